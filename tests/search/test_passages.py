"""Passages: abstracts embedded sentence by sentence, and the head of a search reranked by them."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import Engine, delete, func, select

from broadsheet.db.schema import paper_vectors, papers, passage_vectors
from broadsheet.papers.record import Paper
from broadsheet.papers.repository import upsert_papers
from broadsheet.search import indexing
from broadsheet.search.fusion import Fused
from broadsheet.search.hybrid import SearchRequest, search_papers
from broadsheet.search.indexing import count_pending, index_papers
from broadsheet.search.passages import (
    MAX_PASSAGES,
    best_passages,
    split_passages,
    store_passages,
)
from broadsheet.search.rerank import EXACT_SHARE, rerank
from broadsheet.search.written_words import exact_word_share, word_patterns

BURIED = "Drinking three cups of coffee a day halved the incidence of gout in older men."
LONG_ABSTRACT = (
    "Graph neural networks learn representations of nodes by passing messages along edges. "
    "We study how deep message passing over-smooths node features on large citation graphs. "
    "Our analysis relates the spectral gap of the graph to the speed of over-smoothing. "
    "We propose a residual connection that keeps high-frequency components of the signal. "
    "Experiments on eight benchmarks show consistent gains in node classification accuracy. "
    f"In a side study of a public health registry, we also observe the following. {BURIED}"
)
PAPERS = [
    ("2401.00001", "Over-smoothing in deep graph neural networks", LONG_ABSTRACT),
    (
        "2401.00002",
        "Dietary habits and joint disease",
        "Diet affects many chronic diseases. We review cohort studies of nutrition and arthritis.",
    ),
    ("2401.00003", "A paper with a title only", ""),
]


def _import(store: Engine, rows=PAPERS) -> None:
    with store.begin() as connection:
        upsert_papers(
            connection,
            [Paper(id=i, title_raw=t, abstract_raw=a, source="test") for i, t, a in rows],
        )


def _seq(store: Engine, paper_id: str) -> int:
    with store.connect() as connection:
        return connection.execute(select(papers.c.seq).where(papers.c.id == paper_id)).scalar_one()


def _passage_counts(store: Engine, model: str) -> dict[int, int]:
    with store.connect() as connection:
        rows = connection.execute(
            select(passage_vectors.c.paper_seq, passage_vectors.c.count).where(
                passage_vectors.c.model == model
            )
        )
        return dict(rows.all())


def test_abstracts_split_into_sentences_with_short_pieces_joined() -> None:
    text = "First sentence here. Second one (n = 12) follows!  Does a third one ask anything? Yes."
    assert split_passages("T", text) == [
        "First sentence here.",
        "Second one (n = 12) follows!",
        "Does a third one ask anything? Yes.",
    ]
    # "Methods." alone says nothing: it stays with the sentence before; decimals do not split
    assert split_passages("T", "We measured 3.5 mm of growth in all. Methods. 2 Results.") == [
        "We measured 3.5 mm of growth in all. Methods. 2 Results."
    ]
    assert split_passages("A title", "") == ["A title"]
    assert split_passages("  ", None) == []
    many = " ".join(f"Sentence number {i} of a long abstract." for i in range(50))
    split = split_passages("T", many)
    assert len(split) == MAX_PASSAGES and split[-1].endswith("number 49 of a long abstract.")


def test_index_embeds_each_sentence_and_the_buried_one_answers_its_claim(
    store: Engine, embedder
) -> None:
    _import(store)
    calls: list[int] = []
    summary = index_papers(store, embedder, progress=calls.append)
    assert summary.embedded == 3 and sum(calls) == 3
    long_seq, title_only = _seq(store, "2401.00001"), _seq(store, "2401.00003")
    counts = _passage_counts(store, embedder.name)
    assert counts[long_seq] == 7 and counts[title_only] == 1
    query = embedder.encode([BURIED])[0]
    with store.connect() as connection:
        best = best_passages(connection, embedder.name, list(counts), query)
        whole = np.frombuffer(
            connection.execute(
                select(paper_vectors.c.vector).where(paper_vectors.c.paper_seq == long_seq)
            ).scalar_one(),
            dtype=np.float32,
        )
    assert best[long_seq] == pytest.approx(1.0, abs=2e-3)  # float16, the sentence itself
    assert float(whole @ query) < 0.5  # the paper's one vector hardly notices it
    found = search_papers(store, SearchRequest("coffee cups and gout in older men"))
    assert found.hits[0].paper["id"] == "2401.00001"


def test_passages_can_be_left_out(store: Engine, embedder) -> None:
    _import(store)
    assert index_papers(store, embedder, passages=False).embedded == 3
    assert _passage_counts(store, embedder.name) == {}
    assert count_pending(store, embedder.name, passages=False) == 0
    assert count_pending(store, embedder.name) == 3  # they are still missing, when asked for
    found = search_papers(store, SearchRequest("coffee cups and gout in older men"))
    assert found.hits and found.hits[0].explanation.rerank is None  # nothing to rerank by


def test_an_edited_abstract_re_embeds_that_paper_only(store: Engine, embedder) -> None:
    _import(store)
    index_papers(store, embedder)
    assert count_pending(store, embedder.name) == 0
    assert index_papers(store, embedder).embedded == 0
    _import(store, [("2401.00002", PAPERS[1][1], "One sentence now about knee pain and diet.")])
    assert count_pending(store, embedder.name) == 1
    assert index_papers(store, embedder).embedded == 1
    assert _passage_counts(store, embedder.name)[_seq(store, "2401.00002")] == 1


def test_a_store_without_passages_gets_them_and_keeps_its_vectors(store: Engine, embedder) -> None:
    _import(store)
    index_papers(store, embedder)
    with store.begin() as connection:
        connection.execute(delete(passage_vectors))
        before = connection.execute(select(paper_vectors.c.created_at)).scalars().all()
    assert count_pending(store, embedder.name) == 3
    encoded: list[int] = []
    original = embedder.encode

    def counting(texts, **kwargs):
        encoded.append(len(texts))
        return original(texts, **kwargs)

    embedder.encode = counting
    try:
        assert index_papers(store, embedder).embedded == 3
    finally:
        del embedder.encode
    assert encoded == [7 + 2 + 1]  # the sentences only, in one call: no paper re-embedded
    with store.connect() as connection:
        after = connection.execute(select(paper_vectors.c.created_at)).scalars().all()
    assert after == before and len(_passage_counts(store, embedder.name)) == 3


def test_a_failure_while_storing_passages_leaves_neither_half_written(
    store: Engine, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    _import(store)

    def broken(*args, **kwargs) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(indexing, "store_passages", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        index_papers(store, embedder)
    with store.connect() as connection:
        assert connection.execute(select(func.count()).select_from(paper_vectors)).scalar() == 0
    monkeypatch.undo()
    assert index_papers(store, embedder).embedded == 3  # the next run does it all


def test_deleting_a_paper_deletes_its_passages(store: Engine, embedder) -> None:
    _import(store)
    index_papers(store, embedder)
    with store.begin() as connection:
        connection.execute(delete(papers).where(papers.c.id == "2401.00001"))
    assert _seq(store, "2401.00002") in _passage_counts(store, embedder.name)
    assert len(_passage_counts(store, embedder.name)) == 2


def _unit(vector: list[float]) -> np.ndarray:
    array = np.array(vector, dtype=np.float32)
    return array / np.linalg.norm(array)


def test_rerank_reorders_the_head_only_and_falls_back_to_the_papers_own_cosine(
    store: Engine,
) -> None:
    rows = [(f"2401.{i:05d}", f"Paper {i}", f"Text {i}.") for i in range(1, 7)]
    _import(store, rows)
    seqs = [_seq(store, paper_id) for paper_id, _, _ in rows]
    query = _unit([1.0, 0.0, 0.0])
    with store.begin() as connection:
        store_passages(
            connection,
            "m",
            [(seqs[0], "h0"), (seqs[2], "h2"), (seqs[5], "h5")],
            [
                np.stack([_unit([0.0, 1.0, 0.0]), _unit([0.1, 1.0, 0.0])]),  # far from the query
                np.stack([_unit([0.0, 0.0, 1.0]), _unit([1.0, 0.0, 0.05])]),  # one sentence on it
                np.stack([_unit([1.0, 0.0, 0.0])]),  # outside the head: never read
            ],
        )
    fused = [
        Fused(seqs[0], 1.0, lexical=9.0, dense=0.2, lexical_norm=1.0, dense_norm=0.5),
        Fused(seqs[1], 0.9, lexical=8.0, dense=0.6, lexical_norm=0.9, dense_norm=1.0),
        Fused(seqs[2], 0.8, lexical=7.0, dense=0.1, lexical_norm=0.8, dense_norm=0.0),
        Fused(seqs[3], 0.7, lexical=6.0, dense=None, lexical_norm=0.7),
        Fused(seqs[4], 0.6, lexical=5.0, dense=None, lexical_norm=0.6),
        Fused(seqs[5], 0.5, lexical=4.0, dense=None, lexical_norm=0.5),
    ]
    ranked = rerank(store, "m", list(fused), query, top=4)
    assert [f.seq for f in ranked] == [seqs[2], seqs[1], seqs[0], seqs[3], seqs[4], seqs[5]]
    assert ranked[0].passage == pytest.approx(1.0, abs=2e-3)
    assert ranked[1].passage is None  # no passages: its own cosine stands in
    assert ranked[1].rerank == pytest.approx(0.4 * 0.9 + 0.1 * 1.0 + 0.5 * 0.6)
    assert ranked[-1].rerank is None  # outside the head
    assert rerank(store, "m", list(fused), None) == fused  # lexical search: nothing to read
    assert rerank(store, "other-model", list(fused), query) == fused


def test_words_as_written_count_and_stems_alone_do_not() -> None:
    patterns = word_patterns("the Normalization of layers")
    assert len(patterns) == 2  # "the" and "of" are stop words
    assert exact_word_share(patterns, "Layer normalizations help.") == 1.0  # singular, plural
    assert exact_word_share(patterns, "Normalizations help.") == 0.5
    assert exact_word_share(patterns, "Surface normals of layers.") == 0.5  # layers, not normal
    assert exact_word_share(patterns, "NORMALIZATION of LAYERS") == 1.0
    assert exact_word_share(word_patterns("of the"), "of the") == 1.0  # stop words alone count
    assert exact_word_share([], "anything") == 0.0


def test_a_paper_holding_the_query_word_as_written_goes_first_among_equals(
    store: Engine,
) -> None:
    rows = [
        ("2401.00001", "Surface normals", "We estimate normals of meshes."),
        ("2401.00002", "Batch normalization", "We study normalization of activations."),
    ]
    _import(store, rows)
    first, second = (_seq(store, paper_id) for paper_id, _, _ in rows)
    query = _unit([1.0, 0.0])
    with store.begin() as connection:
        same = np.stack([_unit([1.0, 1.0])])
        store_passages(connection, "m", [(first, "a"), (second, "b")], [same, same])
    fused = [
        Fused(first, 1.0, lexical=5.0, dense=0.5, lexical_norm=1.0, dense_norm=1.0),
        Fused(second, 1.0, lexical=5.0, dense=0.5, lexical_norm=1.0, dense_norm=1.0),
    ]
    ranked = rerank(store, "m", fused, query, query="normalization")
    assert [f.seq for f in ranked] == [second, first]
    assert [f.exact_words for f in ranked] == [1.0, 0.0]
    assert ranked[0].rerank - ranked[1].rerank == pytest.approx(EXACT_SHARE)
