"""Embedding: only what lacks a current vector is embedded; model changes re-embed."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from sqlalchemy import Engine, select

from broadsheet.db.schema import paper_vectors
from broadsheet.search import indexing
from broadsheet.search.embed import SentenceTransformerEmbedder, _model_location
from broadsheet.search.indexing import count_pending, index_papers
from broadsheet.search.vectors import Share, coverage, vector_index


def test_vectors_are_normalised_and_sorted_batches_keep_order(embedder) -> None:
    texts = ["short", "a much longer text about protein folding and amino acids " * 5, "mid length"]
    together = embedder.encode(texts, batch_size=2)
    one_by_one = np.vstack([embedder.encode([t]) for t in texts])
    assert together.shape == (3, embedder.dim) == (3, 384)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert np.allclose(together, one_by_one, atol=1e-5)


def test_unchanged_papers_are_never_embedded_twice(topics_store: Engine, embedder) -> None:
    with topics_store.connect() as connection:
        assert coverage(connection, embedder.name) == (12, 12)
    assert count_pending(topics_store, embedder.name) == 0
    assert index_papers(topics_store, embedder).embedded == 0


def test_changed_text_is_re_embedded(topics_store: Engine, embedder) -> None:
    with topics_store.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE papers SET abstract = 'New text about volcanoes.' WHERE id = '2401.00005'"
        )
    assert count_pending(topics_store, embedder.name) == 1
    calls: list[int] = []
    summary = index_papers(topics_store, embedder, progress=calls.append)
    assert summary.embedded == 1 and sum(calls) == 1
    index = vector_index(topics_store, embedder.name)
    seq = 5  # papers were imported in order
    volcano = embedder.encode(["volcanoes"])[0]
    assert index.search(volcano, 1)[0][0] == seq


def test_model_change_re_embeds_everything(topics_store: Engine, embedder) -> None:
    other = SentenceTransformerEmbedder(_model_location(embedder.name))  # same weights, new name
    assert other.name != embedder.name
    assert count_pending(topics_store, other.name) == 12
    assert index_papers(topics_store, other).embedded == 12
    with topics_store.connect() as connection:
        models = connection.execute(select(paper_vectors.c.model).distinct()).scalars().all()
    assert sorted(models) == sorted([embedder.name, other.name])  # both kept, keyed by model


def _forget_vectors(store: Engine) -> None:
    with store.begin() as connection:
        connection.execute(paper_vectors.delete())


def _embedded_seqs(store: Engine, model: str) -> list[int]:
    with store.connect() as connection:
        return sorted(
            connection.execute(
                select(paper_vectors.c.paper_seq).where(paper_vectors.c.model == model)
            ).scalars()
        )


def test_shares_split_the_parts_between_processes(topics_store: Engine, embedder) -> None:
    _forget_vectors(topics_store)
    first = index_papers(topics_store, embedder, part_size=4, share=Share(0, 2))
    assert _embedded_seqs(topics_store, embedder.name) == [1, 2, 3, 8, 9, 10, 11]  # parts 0, 2
    second = index_papers(topics_store, embedder, part_size=4, share=Share(1, 2))
    assert (first.embedded, second.embedded) == (7, 5)
    assert _embedded_seqs(topics_store, embedder.name) == list(range(1, 13))


def test_a_run_reads_the_papers_once_not_from_the_start_each_window(
    topics_store: Engine, embedder, monkeypatch
) -> None:
    _forget_vectors(topics_store)
    monkeypatch.setattr(indexing, "WINDOW", 3)
    starts: list[int] = []
    read = indexing.pending_papers

    def reading(connection, model, **options):
        if "seqs" not in options:  # a window, not a part read again under its lock
            starts.append(options["after"])
        return read(connection, model, **options)

    monkeypatch.setattr(indexing, "pending_papers", reading)
    assert index_papers(topics_store, embedder, part_size=2).embedded == 12
    assert starts == sorted(set(starts)) and len(starts) <= 12 // 2 + 1  # forward only


def test_parts_another_process_held_are_embedded_once_it_lets_go(
    topics_store: Engine, embedder, monkeypatch
) -> None:
    _forget_vectors(topics_store)
    monkeypatch.setattr(indexing, "WAIT_FOR_OTHERS", 0)
    refused: list[int] = []

    @contextmanager
    def busy_at_first(engine, job, part):
        first_ask = part in (1, 3) and part not in refused
        if first_ask:
            refused.append(part)
        yield not first_ask

    monkeypatch.setattr(indexing, "holding_part", busy_at_first)
    assert index_papers(topics_store, embedder, part_size=4).embedded == 12
    assert refused == [1, 3]
    assert _embedded_seqs(topics_store, embedder.name) == list(range(1, 13))
