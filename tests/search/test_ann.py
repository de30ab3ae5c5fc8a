"""HNSW search of large stores.

SQLite: a usearch graph saved by `index`, loaded and kept in step by searchers. PostgreSQL: the
pgvector HNSW index, written with every vector and searched in the database.
"""

from __future__ import annotations

from itertools import islice

import numpy as np
import pytest
from sqlalchemy import Engine, event, func, select, text

from broadsheet.db.schema import papers
from broadsheet.papers.record import Paper
from broadsheet.papers.repository import upsert_papers
from broadsheet.search import vector_sqlite
from broadsheet.search.ann import AnnGraph, ann_path
from broadsheet.search.vector_sqlite import MatrixIndex
from broadsheet.search.vectors import pending_papers, save_graph, store_vectors, vector_index
from databases import ON_POSTGRES

MODEL = "test-model"
DIM = 32
sqlite_only = pytest.mark.skipif(ON_POSTGRES, reason="SQLite's graph file; see the pgvector tests")
postgres_only = pytest.mark.skipif(not ON_POSTGRES, reason="pgvector; see the graph file tests")


@pytest.fixture(autouse=True)
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Graphs from 100 vectors on, so tests stay small; a fresh per-process index cache."""
    monkeypatch.setattr(vector_sqlite, "ANN_FROM", 100)
    monkeypatch.setattr(vector_sqlite, "CATCH_UP_LIMIT", 20)
    monkeypatch.setattr(vector_sqlite, "_indexes", {})


def add_papers(engine: Engine, start: int, count: int, seed: int) -> np.ndarray:
    """``count`` papers with random unit vectors; returns the vectors in seq order."""
    with engine.begin() as connection:
        upsert_papers(
            connection,
            [
                Paper(
                    id=f"2401.{i:05d}",
                    title_raw=f"Paper {i}",
                    abstract_raw=f"Text {i}.",
                    source="test",
                )
                for i in range(start, start + count)
            ],
        )
    rng = np.random.default_rng(seed)
    with engine.connect() as reader:
        pending = list(islice(pending_papers(reader, MODEL), count))
    stacked = rng.standard_normal((len(pending), DIM)).astype(np.float32)
    stacked /= np.linalg.norm(stacked, axis=1, keepdims=True)
    with engine.begin() as writer:
        store_vectors(writer, MODEL, pending, stacked)
    return stacked


def fresh_index(engine: Engine) -> MatrixIndex:
    """What a new process would see."""
    vector_sqlite._indexes.clear()
    return vector_index(engine, MODEL)


def exact_top(index: MatrixIndex, query: np.ndarray, k: int) -> list[int]:
    return [int(index.seqs[i]) for i in np.argsort(-(index.matrix @ query))[:k]]


@sqlite_only
def test_small_stores_have_no_graph(store: Engine) -> None:
    add_papers(store, 1, 50, seed=1)
    assert save_graph(store, MODEL) is None
    assert not ann_path(store, MODEL).exists()
    assert not fresh_index(store).uses_graph


@sqlite_only
def test_saved_graph_is_loaded_and_finds_what_the_exact_scan_finds(store: Engine) -> None:
    add_papers(store, 1, 300, seed=2)
    assert save_graph(store, MODEL) == 300
    assert ann_path(store, MODEL).is_file()
    index = fresh_index(store)
    assert index.uses_graph and len(index.graph) == 300
    rng = np.random.default_rng(3)
    overlap = 0
    for _ in range(20):
        query = rng.standard_normal(DIM).astype(np.float32)
        query /= np.linalg.norm(query)
        found = index.search(query, 10)
        assert [score for _, score in found] == sorted((s for _, s in found), reverse=True)
        overlap += len({seq for seq, _ in found} & set(exact_top(index, query, 10)))
        exact = {int(s): float(c) for s, c in zip(index.seqs, index.matrix @ query, strict=True)}
        assert all(abs(score - exact[seq]) < 1e-5 for seq, score in found)  # exact re-scoring
    assert overlap / 200 >= 0.95  # approximate, but hardly ever wrong


@sqlite_only
def test_new_vectors_join_a_loaded_graph_and_a_far_behind_graph_is_left_unused(
    store: Engine,
) -> None:
    add_papers(store, 1, 200, seed=4)
    save_graph(store, MODEL)
    fresh_index(store)
    added = add_papers(store, 1000, 10, seed=5)  # within the catch-up limit
    index = vector_index(store, MODEL)
    assert index.uses_graph and len(index.graph) == 210
    assert index.search(added[3], 1)[0][0] == index.seqs[-7]
    add_papers(store, 2000, 50, seed=6)  # more than a searcher adds on its own
    index = fresh_index(store)
    assert not index.uses_graph and len(index) == 260
    assert save_graph(store, MODEL) == 260
    assert fresh_index(store).uses_graph


@sqlite_only
def test_graph_search_honours_exclude_and_filters_fall_back_to_exact(store: Engine) -> None:
    stored = add_papers(store, 1, 150, seed=7)
    save_graph(store, MODEL)
    index = fresh_index(store)
    first = int(index.seqs[0])
    assert index.search(stored[0], 1)[0][0] == first
    assert first not in {seq for seq, _ in index.search(stored[0], 5, exclude=first)}
    allowed = {int(s) for s in index.seqs[100:110]}
    assert {seq for seq, _ in index.search(stored[0], 50, allowed=allowed)} == allowed


@sqlite_only
def test_an_unreadable_graph_is_ignored(store: Engine) -> None:
    add_papers(store, 1, 120, seed=8)
    save_graph(store, MODEL)
    path = ann_path(store, MODEL)
    path.write_bytes(b"not a graph")
    assert AnnGraph.load(path, DIM) is None
    index = fresh_index(store)
    assert not index.uses_graph and len(index.search(index.matrix[0], 3)) == 3


def exact_neighbours(stored: np.ndarray, first_seq: int, query: np.ndarray, k: int) -> list[int]:
    return [first_seq + int(i) for i in np.argsort(-(stored @ query))[:k]]


def first_seq(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.min(papers.c.seq))).scalar_one()


@postgres_only
def test_postgres_keeps_an_hnsw_index_in_the_database_and_saves_no_file(store: Engine) -> None:
    add_papers(store, 1, 300, seed=2)
    assert save_graph(store, MODEL) == 300  # all in the index, which follows every write
    with store.connect() as connection:
        index_sql = connection.execute(
            text("SELECT indexdef FROM pg_indexes WHERE tablename = :t"),
            {"t": f"paper_embeddings_{DIM}"},
        ).scalars()
        rows = connection.execute(text(f"SELECT count(*) FROM paper_embeddings_{DIM}")).scalar()
    assert not ann_path(store, MODEL).parent.exists()  # no file beside anything
    assert any("hnsw" in sql and "vector_cosine_ops" in sql for sql in index_sql)
    assert rows == 300  # written with the bytes, in the same transaction


@postgres_only
def test_postgres_search_reads_no_stored_vectors_and_widens_the_hnsw_list(store: Engine) -> None:
    stored = add_papers(store, 1, 300, seed=3)
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    event.listen(store, "before_cursor_execute", record)
    try:
        found = vector_index(store, MODEL).search(stored[0], 250)
    finally:
        event.remove(store, "before_cursor_execute", record)
    assert not any("paper_vectors.vector" in sql for sql in statements)  # nothing loaded here
    assert any("hnsw.ef_search = 500" in sql for sql in statements)
    assert any("hnsw.iterative_scan = relaxed_order" in sql for sql in statements)
    assert len(found) == 250  # more than pgvector's default list of 40 would give
    assert [score for _, score in found] == sorted((s for _, s in found), reverse=True)


@postgres_only
def test_postgres_hnsw_finds_what_the_exact_scan_finds_and_follows_writes(store: Engine) -> None:
    stored = add_papers(store, 1, 300, seed=4)
    first = first_seq(store)
    index = vector_index(store, MODEL)
    rng = np.random.default_rng(5)
    overlap = 0
    for _ in range(20):
        query = rng.standard_normal(DIM).astype(np.float32)
        query /= np.linalg.norm(query)
        found = index.search(query, 10)
        overlap += len({seq for seq, _ in found} & set(exact_neighbours(stored, first, query, 10)))
        exact = stored @ query
        assert all(abs(score - exact[seq - first]) < 1e-4 for seq, score in found)
    assert overlap / 200 >= 0.95
    added = add_papers(store, 1000, 5, seed=6)  # searchable at once, no graph to rebuild
    assert index.search(added[2], 1)[0][0] == first + 302
    assert first not in {seq for seq, _ in index.search(stored[0], 5, exclude=first)}
    allowed = set(range(first + 100, first + 110))
    assert {seq for seq, _ in index.search(stored[0], 50, allowed=allowed)} == allowed


def hnsw_indexes(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return (
            connection.execute(
                text(
                    "SELECT indexname FROM pg_indexes"
                    " WHERE tablename = :t AND indexdef LIKE '%hnsw%'"
                ),
                {"t": f"paper_embeddings_{DIM}"},
            )
            .scalars()
            .all()
        )


@postgres_only
@pytest.mark.parametrize("rebuild_from", [1000, 10], ids=["grown", "rebuilt"])
def test_postgres_backfill_copies_vectors_stored_as_bytes(
    store: Engine, monkeypatch: pytest.MonkeyPatch, rebuild_from: int
) -> None:
    from broadsheet.search import vector_pgvector

    monkeypatch.setattr(vector_pgvector, "REBUILD_FROM", rebuild_from)
    stored = add_papers(store, 1, 120, seed=7)
    with store.begin() as connection:
        connection.execute(text(f"DELETE FROM paper_embeddings_{DIM} WHERE paper_seq % 2 = 0"))
    index = vector_index(store, MODEL)
    with store.begin() as connection:
        assert vector_pgvector.backfill(connection) == 60
        assert vector_pgvector.backfill(connection) == 0  # safe to repeat
    assert len(hnsw_indexes(store)) == 1  # the index is there, grown or built afresh
    first = first_seq(store)
    assert all(index.search(stored[i], 1)[0][0] == first + i for i in range(0, 120, 7))
