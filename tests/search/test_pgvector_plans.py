"""PostgreSQL's plans for vector search: the HNSW index stays in use after a bulk load and
after the driver starts preparing the search statement."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import Engine, text

from broadsheet.papers.record import Paper
from broadsheet.papers.repository import upsert_papers
from broadsheet.search.vectors import pending_papers, store_vectors, vector_index
from databases import ON_POSTGRES

pytestmark = pytest.mark.skipif(not ON_POSTGRES, reason="pgvector plans")

MODEL = "test-model"
DIM = 16


def add_papers(engine: Engine, count: int) -> np.ndarray:
    with engine.begin() as connection:
        upsert_papers(
            connection,
            [
                Paper(id=f"2401.{i:05d}", title_raw=f"Paper {i}", abstract_raw="Text.", source="t")
                for i in range(count)
            ],
        )
    with engine.connect() as reader:
        pending = list(pending_papers(reader, MODEL))
    vectors = np.random.default_rng(3).standard_normal((len(pending), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with engine.begin() as writer:
        store_vectors(writer, MODEL, pending, vectors)
    return vectors


def test_backfill_that_rebuilds_the_index_leaves_statistics(
    store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from broadsheet.search import vector_pgvector

    monkeypatch.setattr(vector_pgvector, "REBUILD_FROM", 10)
    add_papers(store, 50)
    with store.begin() as connection:
        connection.execute(text(f"DELETE FROM paper_embeddings_{DIM}"))
    with store.begin() as connection:
        assert vector_pgvector.backfill(connection) == 50
    with store.connect() as connection:
        columns = connection.execute(
            text("SELECT count(*) FROM pg_stats WHERE tablename = :t"),
            {"t": f"paper_embeddings_{DIM}"},
        ).scalar_one()
    assert columns > 0


def test_repeated_searches_are_planned_for_their_own_vector(store: Engine) -> None:
    vectors = add_papers(store, 300)
    with store.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))
    index = vector_index(store, MODEL)
    for vector in vectors[:20]:  # the driver prepares the statement from the fifth run on
        assert len(index.search(vector, 10)) == 10
    with store.connect() as connection:  # the pool hands back the connection searches used
        plans = connection.execute(
            text(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                " WHERE statement LIKE '%<=>%'"
            )
        ).all()
    assert plans, "the search statement was never prepared"
    assert all(generic == 0 and custom > 0 for generic, custom in plans)


def test_the_server_s_pgvector_is_new_enough(store: Engine) -> None:
    from broadsheet.search.vector_pgvector import require_pgvector

    with store.connect() as connection:
        require_pgvector(connection)  # raises when it is not


def test_an_old_pgvector_is_refused_with_what_to_do() -> None:
    from broadsheet.search.vector_pgvector import pgvector_problem, version_tuple

    assert version_tuple("0.8.0-beta") == (0, 8, 0) and version_tuple("0.10.1") == (0, 10, 1)
    assert pgvector_problem("0.8.0", "0.8.0") is None
    assert pgvector_problem("0.10.0", None) is None  # numbers, not text, are compared
    update = pgvector_problem("0.7.4", "0.8.1")
    assert "0.7.4" in update and "ALTER EXTENSION vector UPDATE" in update
    install = pgvector_problem("0.5.1", "0.5.1")
    assert "apt.postgresql.org" in install and "0.8.0 or newer" in install
