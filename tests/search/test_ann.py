"""HNSW search of large stores.

SQLite: a generation of files saved by `index` (graph, seqs, float16 vectors), memory-mapped by
every searching process, extended by the next `index`. PostgreSQL: the pgvector HNSW index,
written with every vector and searched in the database.
"""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, delete, event, func, select, text

from broadsheet.db.schema import papers
from broadsheet.papers.record import Paper
from broadsheet.papers.repository import upsert_papers
from broadsheet.search import ann, vector_sqlite
from broadsheet.search.ann import SavedVectors, pointer_path
from broadsheet.search.vector_sqlite import MappedIndex, MatrixIndex
from broadsheet.search.vectors import (
    PendingPaper,
    pending_papers,
    save_graph,
    store_vectors,
    vector_index,
)
from databases import ON_POSTGRES

MODEL = "test-model"
DIM = 32
sqlite_only = pytest.mark.skipif(ON_POSTGRES, reason="SQLite's saved files; see the pgvector tests")
postgres_only = pytest.mark.skipif(not ON_POSTGRES, reason="pgvector; see the saved-file tests")


@pytest.fixture(autouse=True)
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Saved generations from 100 vectors on, so tests stay small; a fresh per-process cache."""
    monkeypatch.setattr(vector_sqlite, "ANN_FROM", 100)
    monkeypatch.setattr(vector_sqlite, "_indexes", {})
    monkeypatch.setattr(vector_sqlite, "_unusable", {})


def unit_vectors(count: int, seed: int) -> np.ndarray:
    stacked = np.random.default_rng(seed).standard_normal((count, DIM)).astype(np.float32)
    return stacked / np.linalg.norm(stacked, axis=1, keepdims=True)


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
    with engine.connect() as reader:
        pending = list(islice(pending_papers(reader, MODEL), count))
    stacked = unit_vectors(len(pending), seed)
    with engine.begin() as writer:
        store_vectors(writer, MODEL, pending, stacked)
    return stacked


def rewrite_vector(engine: Engine, seq: int, vector: np.ndarray) -> None:
    """Store a new vector for one paper, as re-embedding an edited abstract does."""
    with engine.begin() as writer:
        store_vectors(writer, MODEL, [PendingPaper(seq, "edited", "edited")], vector[None, :])


def all_seqs(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return connection.execute(select(papers.c.seq).order_by(papers.c.seq)).scalars().all()


def fresh_index(engine: Engine) -> MatrixIndex | MappedIndex:
    """What a new process would see."""
    vector_sqlite._indexes.clear()
    return vector_index(engine, MODEL)


def exact_top(vectors: np.ndarray, seqs: list[int], query: np.ndarray, k: int) -> list[int]:
    return [seqs[i] for i in np.argsort(-(vectors @ query))[:k]]


def rows_read_for_the_graph(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the chunks of vector rows saves read to add to the graph (from now on);
    rows read up to a bound only fill the float16 copy."""
    read: list[int] = []
    rows = ann._rows

    def counted(connection, model, after, upto=None):
        for chunk in rows(connection, model, after, upto):
            if upto is None:
                read.append(len(chunk[0]))
            yield chunk

    monkeypatch.setattr(ann, "_rows", counted)
    return read


def mapped_files() -> set[str]:
    """The files this process has memory-mapped."""
    lines = Path("/proc/self/maps").read_text().splitlines()
    return {line.split(maxsplit=5)[5] for line in lines if len(line.split(maxsplit=5)) == 6}


@sqlite_only
def test_small_stores_have_no_saved_files(store: Engine) -> None:
    add_papers(store, 1, 50, seed=1)
    assert save_graph(store, MODEL) is None
    assert not pointer_path(store, MODEL).parent.exists()
    assert isinstance(fresh_index(store), MatrixIndex)


@sqlite_only
def test_saved_vectors_are_memory_mapped_and_find_what_the_exact_scan_finds(store: Engine) -> None:
    stored = add_papers(store, 1, 300, seed=2)
    assert save_graph(store, MODEL) == 300
    index = fresh_index(store)
    assert isinstance(index, MappedIndex) and index.uses_graph and len(index) == 300
    assert index.recent == 0  # nothing copied into this process
    generation = index.saved.generation
    files = {str(p) for p in pointer_path(store, MODEL).parent.glob(f"*.{generation}.*")}
    assert len(files) == 3 and files <= mapped_files()  # graph, seqs, float16 vectors
    assert isinstance(index.saved.vectors, np.memmap)
    seqs = all_seqs(store)
    overlap = 0
    for query in unit_vectors(20, seed=3):
        found = index.search(query, 10)
        assert [score for _, score in found] == sorted((s for _, s in found), reverse=True)
        overlap += len({seq for seq, _ in found} & set(exact_top(stored, seqs, query, 10)))
        exact = dict(zip(seqs, (stored @ query).tolist(), strict=True))
        assert all(abs(score - exact[seq]) < 1e-6 for seq, score in found)  # float32 scores
    assert overlap / 200 >= 0.95


@sqlite_only
def test_vectors_written_after_a_save_are_searched_at_once_and_the_next_save_extends_it(
    store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_papers(store, 1, 200, seed=4)
    save_graph(store, MODEL)
    searcher = fresh_index(store)
    added = add_papers(store, 1000, 10, seed=5)
    assert vector_index(store, MODEL) is searcher  # the same generation, refreshed
    assert len(searcher) == 210 and searcher.recent == 10
    newest = all_seqs(store)[-10:]
    assert searcher.search(added[3], 1)[0] == (newest[3], pytest.approx(1.0, abs=1e-6))

    read = rows_read_for_the_graph(monkeypatch)
    assert save_graph(store, MODEL) == 210
    assert sum(read) == 10  # only the new rows: the graph is extended, not rebuilt
    index = vector_index(store, MODEL)
    assert index is not searcher and index.recent == 0  # switched to the new generation
    assert index.search(added[3], 1)[0][0] == newest[3]
    assert save_graph(store, MODEL) == 210 and sum(read) == 10  # nothing new: nothing read
    assert vector_index(store, MODEL) is index  # and no new generation written


@sqlite_only
def test_a_rewritten_vector_replaces_the_saved_one_before_and_after_the_next_save(
    store: Engine,
) -> None:
    stored = add_papers(store, 1, 150, seed=6)
    save_graph(store, MODEL)
    seq = all_seqs(store)[40]
    index = fresh_index(store)
    assert index.search(stored[40], 1)[0][0] == seq
    replacement = unit_vectors(1, seed=7)[0]
    rewrite_vector(store, seq, replacement)
    for searcher in (vector_index(store, MODEL), fresh_index(store)):
        assert len(searcher) == 150  # the same papers, one vector newer
        assert searcher.search(replacement, 1)[0] == (seq, pytest.approx(1.0, abs=1e-6))
        assert seq not in {s for s, c in searcher.search(stored[40], 5) if c > 0.999}
    assert save_graph(store, MODEL) == 150
    saved = fresh_index(store)
    assert saved.recent == 0
    rows, found = saved.saved.rows_of(np.array([seq]))
    assert found[0] and np.allclose(saved.saved.vectors[rows[0]], replacement, atol=1e-3)
    assert saved.search(replacement, 1)[0][0] == seq


@sqlite_only
def test_a_deleted_paper_leaves_results_at_once_and_the_graph_at_the_next_save(
    store: Engine,
) -> None:
    stored = add_papers(store, 1, 150, seed=8)
    save_graph(store, MODEL)
    seq = all_seqs(store)[10]
    index = fresh_index(store)
    with store.begin() as connection:
        connection.execute(delete(papers).where(papers.c.seq == seq))  # cascades to its vector
    found = vector_index(store, MODEL).search(stored[10], 5)
    assert len(found) == 5 and seq not in {s for s, _ in found}  # re-scoring reads the table
    assert index.vector_of(seq) is None
    assert save_graph(store, MODEL) == 149
    saved = fresh_index(store).saved
    assert seq not in saved.seqs.tolist() and len(saved.graph) == 149
    assert not saved.graph.contains(seq)


@sqlite_only
def test_another_process_maps_the_same_files_and_follows_a_new_generation(
    store: Engine,
) -> None:
    stored = add_papers(store, 1, 200, seed=9)
    save_graph(store, MODEL)
    holder = fresh_index(store)  # a long-lived searcher holding the first generation
    old_generation = holder.saved.generation
    url = store.url.render_as_string(hide_password=False)
    script = f"""
import json, sys
from pathlib import Path
import numpy as np
from broadsheet.db.engine import make_engine
from broadsheet.search import vector_sqlite
from broadsheet.search.vectors import vector_index
vector_sqlite.ANN_FROM = 100
engine = make_engine({url!r})
index = vector_index(engine, {MODEL!r})
query = np.array(json.loads(sys.stdin.read()), dtype=np.float32)
maps = Path("/proc/self/maps").read_text()
print(json.dumps({{
    "kind": type(index).__name__,
    "generation": index.saved.generation,
    "mapped": [line.split()[-1] for line in maps.splitlines() if ".ann/" in line],
    "found": index.search(query, 3),
}}))
"""

    def other_process(query: np.ndarray) -> dict:
        done = subprocess.run(
            [sys.executable, "-c", script],
            input=json.dumps(query.tolist()),
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        return json.loads(done.stdout.splitlines()[-1])

    seqs = all_seqs(store)
    seen = other_process(stored[5])
    assert seen["kind"] == "MappedIndex" and seen["generation"] == old_generation
    assert {f"{MODEL}.{old_generation}.usearch", f"{MODEL}.{old_generation}.f16.npy"} <= {
        Path(name).name for name in seen["mapped"]
    }
    assert seen["found"][0][0] == seqs[5]
    added = add_papers(store, 2000, 5, seed=10)
    save_graph(store, MODEL)
    seen = other_process(added[1])
    assert seen["generation"] != old_generation
    assert seen["found"][0][0] == all_seqs(store)[-4]
    folder = pointer_path(store, MODEL).parent
    assert not list(folder.glob(f"*.{old_generation}.*"))  # old files deleted after the switch
    # the searcher still holding them keeps its mapping and answers until it looks again
    assert holder.search(stored[5], 1)[0][0] == seqs[5]
    assert vector_index(store, MODEL).saved.generation == seen["generation"]


@sqlite_only
def test_unusable_saved_files_leave_search_exact_and_are_not_reopened_per_query(
    store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = add_papers(store, 1, 120, seed=11)
    save_graph(store, MODEL)
    generation = fresh_index(store).saved.generation
    graph_file = pointer_path(store, MODEL).with_name(f"{MODEL}.{generation}.usearch")
    graph_file.write_bytes(b"not a graph")
    opened: list[Path] = []
    real_open = SavedVectors.open.__func__

    def counting_open(cls, pointer: Path, view: bool = True):
        opened.append(pointer)
        return real_open(cls, pointer, view)

    monkeypatch.setattr(SavedVectors, "open", classmethod(counting_open))
    for _ in range(3):
        index = fresh_index(store) if not opened else vector_index(store, MODEL)
        assert isinstance(index, MatrixIndex) and index.search(stored[0], 3)[0][0] == 1
    assert len(opened) == 1
    assert save_graph(store, MODEL) == 120  # rebuilt from the table
    index = vector_index(store, MODEL)
    assert isinstance(index, MappedIndex) and index.search(stored[0], 1)[0][0] == 1


@sqlite_only
def test_filters_and_exclude_go_through_the_float16_rows_and_recent_vectors(
    store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = add_papers(store, 1, 150, seed=12)
    save_graph(store, MODEL)
    added = add_papers(store, 1000, 5, seed=13)
    index = fresh_index(store)
    seqs = all_seqs(store)
    assert index.search(stored[0], 1)[0][0] == seqs[0]
    assert seqs[0] not in {seq for seq, _ in index.search(stored[0], 5, exclude=seqs[0])}
    matrix = np.vstack([stored, added])
    exact = dict(zip(seqs, (matrix @ added[-1]).tolist(), strict=True))
    narrow = set(seqs[100:103]) | {seqs[-1]}  # under 5 %: the allowed rows are scanned
    found = index.search(added[-1], 50, allowed=narrow)
    assert {seq for seq, _ in found} == narrow and found[0][0] == seqs[-1]
    assert all(abs(score - exact[seq]) < 1e-6 for seq, score in found)
    broad = set(seqs[::2])  # half, but more candidates than it allows: its rows are scanned
    asked = graph_requests(monkeypatch)
    found = index.search(added[-1], 10, allowed=broad)
    best = sorted(broad, key=lambda seq: -exact[seq])[:10]
    assert [seq for seq, _ in found] == best and asked == []
    assert all(abs(score - exact[seq]) < 1e-6 for seq, score in found)
    found = index.search(added[-1], 2, allowed=broad)  # 69 of the graph's answer, filtered
    assert asked == [69]
    assert {seq for seq, _ in found} <= broad and len(found) == 2
    assert all(abs(score - exact[seq]) < 1e-6 for seq, score in found)
    # the graph's answer is approximate; the best is the query's own vector, added since
    assert found[0][0] == best[0] == seqs[-1]


def graph_requests(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many candidates each search asks of a saved graph, as the searches go."""
    asked: list[int] = []
    nearest = SavedVectors.approximate_nearest

    def counting(saved: SavedVectors, query: np.ndarray, count: int):
        asked.append(count)
        return nearest(saved, query, count)

    monkeypatch.setattr(SavedVectors, "approximate_nearest", counting)
    return asked


@sqlite_only
def test_a_graph_of_the_earlier_layout_is_extended_not_built_again(
    store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from usearch.index import Index

    stored = add_papers(store, 1, 150, seed=14)
    pointer = pointer_path(store, MODEL)
    pointer.parent.mkdir()
    legacy = Index(ndim=DIM, metric="cos", dtype="f16")
    legacy.add(np.asarray(all_seqs(store), dtype=np.uint64), stored)
    legacy.save(str(pointer.with_suffix(".usearch")))
    with store.connect() as connection:
        newest = connection.exec_driver_sql("SELECT max(rowid) FROM paper_vectors").scalar()
    pointer.write_bytes(json.dumps({"dim": DIM, "last_rowid": newest, "vectors": 150}).encode())
    assert isinstance(fresh_index(store), MatrixIndex)  # searches stay exact until the save
    added = add_papers(store, 1000, 5, seed=15)
    added_to_graph = rows_read_for_the_graph(monkeypatch)
    assert save_graph(store, MODEL) == 155
    assert added_to_graph == [5]
    assert not pointer.with_suffix(".usearch").exists()
    index = vector_index(store, MODEL)
    assert isinstance(index, MappedIndex) and len(index.saved.graph) == 155
    seqs = all_seqs(store)
    assert index.search(stored[7], 1)[0][0] == seqs[7]
    assert index.search(added[2], 1)[0][0] == seqs[152]
    rows_, found = index.saved.rows_of(np.array([seqs[7]]))
    assert found[0] and np.allclose(index.saved.vectors[rows_[0]], stored[7], atol=1e-3)


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
    assert not pointer_path(store, MODEL).parent.exists()  # no file beside anything
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


@sqlite_only
def test_the_graph_explores_as_many_candidates_as_configured(
    store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from broadsheet.config import get_settings

    stored = add_papers(store, 1, 120, seed=16)
    save_graph(store, MODEL)
    assert fresh_index(store).saved.graph.expansion_search == 1024  # the default
    monkeypatch.setenv("BROADSHEET_VECTOR_EF_SEARCH", "2048")
    get_settings.cache_clear()
    try:
        index = fresh_index(store)
        assert index.saved.graph.expansion_search == 2048
        assert index.search(stored[3], 1)[0][0] == all_seqs(store)[3]
    finally:
        monkeypatch.delenv("BROADSHEET_VECTOR_EF_SEARCH")
        get_settings.cache_clear()


@sqlite_only
def test_a_store_whose_vectors_are_all_gone_saves_and_searches_empty(store: Engine) -> None:
    stored = add_papers(store, 1, 120, seed=17)
    save_graph(store, MODEL)
    fresh_index(store)
    with store.begin() as connection:
        connection.execute(delete(papers))
    assert vector_index(store, MODEL).search(stored[0], 5) == []  # the table is read
    assert save_graph(store, MODEL) == 0
    assert isinstance(vector_index(store, MODEL), MatrixIndex)  # a running searcher too
    assert fresh_index(store).search(stored[0], 5) == []
    add_papers(store, 500, 3, seed=18)
    assert len(fresh_index(store).search(stored[0], 5)) == 3


@sqlite_only
def test_saving_one_model_leaves_the_files_of_a_model_whose_name_extends_it(
    store: Engine,
) -> None:
    stored = add_papers(store, 1, 120, seed=19)
    other = f"{MODEL}.v2"  # "bge-small-en-v1" beside "bge-small-en-v1.5"
    with store.connect() as reader:
        pending = list(pending_papers(reader, other))
    with store.begin() as writer:
        store_vectors(writer, other, pending, stored)
    assert save_graph(store, other) == 120
    other_files = set(pointer_path(store, other).parent.glob(f"{other}.*"))
    add_papers(store, 500, 2, seed=20)
    assert save_graph(store, MODEL) == 122  # and again, replacing its first generation
    assert save_graph(store, MODEL) == 122
    assert other_files <= set(pointer_path(store, other).parent.glob(f"{other}.*"))
    vector_sqlite._indexes.clear()
    assert isinstance(vector_index(store, other), MappedIndex)
    assert vector_index(store, other).search(stored[4], 1)[0][0] == all_seqs(store)[4]


@sqlite_only
def test_a_save_that_dies_before_the_switch_leaves_the_previous_generation_in_use(
    store: Engine,
) -> None:
    stored = add_papers(store, 1, 150, seed=21)
    save_graph(store, MODEL)
    before = fresh_index(store).saved.generation
    pointer = pointer_path(store, MODEL)
    added = add_papers(store, 500, 4, seed=22)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the process stopped with every new file written

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ann.orjson, "dumps", killed)  # what writes the new pointer
        with pytest.raises(KeyboardInterrupt):
            save_graph(store, MODEL)
    assert len({p.name for p in pointer.parent.iterdir()}) == 7  # two generations, one pointer
    index = fresh_index(store)
    assert index.saved.generation == before  # the pointer never moved
    assert index.search(added[1], 1)[0][0] == all_seqs(store)[151]  # read from the table
    assert index.search(stored[9], 1)[0][0] == all_seqs(store)[9]
    assert save_graph(store, MODEL) == 154
    after = fresh_index(store).saved.generation
    assert after != before
    leftovers = {p.name for p in pointer.parent.iterdir()} - {pointer.name}
    assert len(leftovers) == 3 and all(f".{after}." in name for name in leftovers)
