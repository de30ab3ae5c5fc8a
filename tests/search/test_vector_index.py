"""The vector index seam: each engine's index finds what an exact scan finds, within filters.

The same vectors go through the store's own index (SQLite's matrix, exact below the graph's
size and through its saved graph above; PostgreSQL's pgvector HNSW) and are compared with the
exact neighbours computed here.
"""

from __future__ import annotations

from datetime import datetime
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, func, select, text, update
from sqlalchemy.engine import make_url

from broadsheet.db.engine import alembic_config, make_engine, migrate
from broadsheet.db.schema import paper_vectors, papers
from broadsheet.papers.record import Paper
from broadsheet.papers.repository import upsert_papers
from broadsheet.search import vector_sqlite
from broadsheet.search.vector_index import for_engine, vectors_of
from broadsheet.search.vectors import pending_papers, save_graph, store_vectors, vector_index
from databases import ON_POSTGRES, drop_database, new_database_url

MODEL = "seam-model"
DIM = 48
COUNT = 400


@pytest.fixture
def stored(store: Engine, monkeypatch: pytest.MonkeyPatch) -> tuple[np.ndarray, int]:
    monkeypatch.setattr(vector_sqlite, "_indexes", {})
    return fill(store)


def fill(store: Engine) -> tuple[np.ndarray, int]:
    """COUNT papers with clustered unit vectors; every tenth paper has 5 upvotes."""
    with store.begin() as connection:
        upsert_papers(
            connection,
            [
                Paper(id=f"2403.{i:05d}", title_raw=f"P {i}", abstract_raw="x.", source="test")
                for i in range(COUNT)
            ],
        )
        first = connection.execute(select(func.min(papers.c.seq))).scalar_one()
        connection.execute(update(papers).where((papers.c.seq - first) % 10 == 0).values(upvotes=5))
    rng = np.random.default_rng(11)
    centres = rng.standard_normal((8, DIM))
    vectors = centres[rng.integers(0, 8, COUNT)] + 0.6 * rng.standard_normal((COUNT, DIM))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    with store.connect() as reader:
        pending = list(islice(pending_papers(reader, MODEL), COUNT))
    with store.begin() as writer:
        store_vectors(writer, MODEL, pending, vectors)
    return vectors, first


def queries(count: int = 25) -> np.ndarray:
    rng = np.random.default_rng(12)
    found = rng.standard_normal((count, DIM)).astype(np.float32)
    return found / np.linalg.norm(found, axis=1, keepdims=True)


def exact(vectors: np.ndarray, first: int, query: np.ndarray, k: int, keep=None) -> list[int]:
    order = [int(i) for i in np.argsort(-(vectors @ query))]
    return [first + i for i in order if keep is None or keep(i)][:k]


@pytest.fixture(params=["as stored", "through a saved graph"])
def index(request, store: Engine, stored, monkeypatch: pytest.MonkeyPatch):
    """The store's index; on SQLite also once through the graph ``index`` saves."""
    if request.param == "through a saved graph":
        if store.dialect.name != "sqlite":
            pytest.skip("only SQLite keeps a graph outside the database")
        monkeypatch.setattr(vector_sqlite, "ANN_FROM", 100)
        assert save_graph(store, MODEL) == COUNT
        vector_sqlite._indexes.clear()
    return vector_index(store, MODEL)


def test_nearest_neighbours_agree_with_the_exact_scan(index, stored) -> None:
    vectors, first = stored
    assert len(index) == COUNT
    recall = []
    for query in queries():
        found = index.search(query, 50)
        assert len(found) == 50
        assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)
        recall.append(len({seq for seq, _ in found} & set(exact(vectors, first, query, 50))) / 50)
        cosines = vectors @ query
        assert all(abs(score - cosines[seq - first]) < 1e-4 for seq, score in found)
    assert np.mean(recall) >= 0.95


def test_filters_are_honoured_and_still_fill_the_list(index, stored) -> None:
    vectors, first = stored
    upvoted = [papers.c.upvotes >= 5]  # one paper in ten
    recall = []
    for query in queries(10):
        found = index.search(query, 20, where=upvoted)
        assert len(found) == 20  # a selective filter still gives as many as asked
        assert all((seq - first) % 10 == 0 for seq, _ in found)
        wanted = exact(vectors, first, query, 20, keep=lambda i: i % 10 == 0)
        recall.append(len({seq for seq, _ in found} & set(wanted)) / 20)
    assert np.mean(recall) >= 0.9
    allowed = {first + i for i in range(5, 400, 40)}
    query = queries(1)[0]
    assert {seq for seq, _ in index.search(query, 50, allowed=allowed)} == allowed
    both = index.search(query, 50, allowed=allowed | {first}, where=upvoted)
    assert {seq for seq, _ in both} == {first}
    assert first not in {seq for seq, _ in index.search(vectors[0], 5, exclude=first)}


def test_the_count_follows_vectors_just_stored(store: Engine) -> None:
    assert len(vector_index(store, MODEL)) == 0  # asked before the first `index` ran
    fill(store)
    assert len(vector_index(store, MODEL)) == COUNT  # at once, not after a cache expires


def test_stored_vectors_read_back_by_key(store: Engine, stored) -> None:
    vectors, first = stored
    index = for_engine(store).index(store, MODEL)
    assert np.allclose(index.vector_of(first + 7), vectors[7])
    assert index.vector_of(first + COUNT + 5) is None
    with store.connect() as connection:
        read = vectors_of(connection, MODEL, [first + 1, first + 3, first + COUNT + 1])
    assert sorted(read) == [first + 1, first + 3]
    assert np.allclose(read[first + 3], vectors[3])


@pytest.mark.skipif(not ON_POSTGRES, reason="SQLite needs no extension")
def test_migrating_without_the_right_to_create_pgvector_says_what_to_run(tmp_path: Path) -> None:
    url = make_url(new_database_url(tmp_path, "bare"))  # no schema, no extension
    role = f"plain_{url.database}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE ROLE {role} LOGIN PASSWORD 'plain'")
            connection.exec_driver_sql(f"ALTER DATABASE {url.database} OWNER TO {role}")
        plain = make_engine(url.set(username=role, password="plain").render_as_string(False))
        with pytest.raises(RuntimeError, match="CREATE EXTENSION IF NOT EXISTS vector") as raised:
            migrate(plain)
        assert url.database in str(raised.value) and "superuser" in str(raised.value)
        plain.dispose()
    finally:
        drop_database(url.render_as_string(hide_password=False))
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
        admin.dispose()


@pytest.mark.skipif(not ON_POSTGRES, reason="SQLite keeps its vectors as bytes only")
def test_upgrading_a_store_copies_its_stored_vectors_into_pgvector(tmp_path: Path) -> None:
    url = new_database_url(tmp_path, "older")
    engine = make_engine(url)
    try:
        command.upgrade(alembic_config(engine), "0012")  # before pgvector
        vectors = queries(30)
        with engine.begin() as connection:
            connection.execute(  # the columns papers had then: today's importer needs more
                text(
                    "INSERT INTO papers (id, title, title_raw, abstract, abstract_raw, authors,"
                    " categories, links, upvotes, source, record_hash, created_at, modified_at)"
                    " VALUES (:id, 'P', 'P', 'x.', 'x.', '[]', '', '{}', 0, 't', 'h', now(), now())"
                ),
                [{"id": f"2404.{i:05d}"} for i in range(30)],
            )
            seqs = connection.execute(select(papers.c.seq).order_by(papers.c.seq)).scalars().all()
            connection.execute(
                paper_vectors.insert(),
                [
                    {
                        "paper_seq": seq,
                        "model": MODEL,
                        "text_hash": "old",
                        "dim": DIM,
                        "vector": vector.tobytes(),
                        "created_at": datetime(2026, 1, 1),
                    }
                    for seq, vector in zip(seqs, vectors, strict=True)
                ],
            )
        migrate(engine)
        index = vector_index(engine, MODEL)
        assert [index.search(vectors[i], 1)[0][0] for i in range(30)] == seqs
    finally:
        engine.dispose()
        drop_database(url)
