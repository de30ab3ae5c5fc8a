"""A large SQLite store's saved keyword index: bounded-time BM25 top-k beside FTS5.

Every search must see the store as it is now: papers imported, edited or deleted after the
last save, a save that is running or was killed, files that went missing.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import tantivy
from sqlalchemy import Engine, delete, select

from broadsheet.cli import app
from broadsheet.db.engine import make_engine, migrate
from broadsheet.db.schema import papers
from broadsheet.ingest.runner import import_file
from broadsheet.papers.record import Paper
from broadsheet.papers.repository import upsert_papers
from broadsheet.search import keyword_saved
from broadsheet.search.filters import SearchFilters
from broadsheet.search.keyword_index import SqliteKeywordIndex, save_keyword_index, stem
from broadsheet.search.keyword_saved import keywords_dir, saved_state
from broadsheet.search.lexical import lexical_search
from databases import ON_POSTGRES

pytestmark = pytest.mark.skipif(ON_POSTGRES, reason="PostgreSQL keeps its postings in the store")

WORDS = (
    "attention pooling normalization weighting graph kernel sparse dense retrieval ranking "
    "language vision speech protein molecule reinforcement policy reward diffusion sampling "
    "gradient optimizer convolution transformer token embedding contrastive supervised"
).split()


@pytest.fixture(autouse=True)
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Saved from 100 papers on, so tests stay small; a fresh per-process cache."""
    monkeypatch.setattr(keyword_saved, "SAVED_FROM", 100)
    monkeypatch.setattr(keyword_saved, "READ_BATCH", 50)
    monkeypatch.setattr(keyword_saved, "_opened", {})
    monkeypatch.setattr(keyword_saved, "_unusable", {})


def paper(number: int, rng: random.Random, extra: str = "") -> Paper:
    title = " ".join(rng.choices(WORDS, k=4))
    abstract = " ".join(rng.choices(WORDS, k=40)) + (" " + extra if extra else "")
    return Paper(
        id=f"2401.{number:05d}",
        title_raw=title.capitalize(),
        abstract_raw=abstract + ".",
        source="test",
    )


def add_papers(engine: Engine, start: int, count: int, seed: int) -> None:
    rng = random.Random(seed)
    with engine.begin() as connection:
        upsert_papers(connection, [paper(i, rng) for i in range(start, start + count)])


def set_abstract(engine: Engine, number: int, abstract: str) -> int:
    """Give one paper a new abstract, as a re-import of a revised paper does; its seq."""
    with engine.begin() as connection:
        upsert_papers(
            connection,
            [
                Paper(
                    id=f"2401.{number:05d}", title_raw="Revised", abstract_raw=abstract, source="t"
                )
            ],
        )
        return connection.execute(
            select(papers.c.seq).where(papers.c.id == f"2401.{number:05d}")
        ).scalar_one()


def search(engine: Engine, query: str, limit: int = 10, **filters) -> list[int]:
    with engine.connect() as connection:
        found = lexical_search(
            connection, query, limit, SearchFilters(**filters) if filters else None
        )
    return [hit.seq for hit in found]


def fts5(engine: Engine, query: str, limit: int = 10) -> list[tuple[int, float]]:
    with engine.connect() as connection:
        return SqliteKeywordIndex()._fts(connection, query.split(), limit)


def uses_saved(engine: Engine) -> bool:
    with engine.connect() as connection:
        return keyword_saved.opened(connection) is not None


def papers_read_while_saving(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    read: list[int] = []
    add = keyword_saved._add

    def counted(writer, rows, stems_of):
        read.append(len(rows))
        return add(writer, rows, stems_of)

    monkeypatch.setattr(keyword_saved, "_add", counted)
    return read


def test_small_stores_save_nothing_and_search_fts5(store: Engine) -> None:
    add_papers(store, 1, 60, seed=1)
    assert save_keyword_index(store) is None
    assert not keywords_dir(store).exists()
    assert not uses_saved(store)
    assert search(store, "pooling graph") == [seq for seq, _ in fts5(store, "pooling graph")]


def test_the_saved_index_ranks_as_fts5_does(store: Engine) -> None:
    add_papers(store, 1, 400, seed=2)
    assert save_keyword_index(store) == 400
    assert uses_saved(store)
    shared = 0
    for query in ("pooling", "graph kernel", "sparse retrieval ranking", "protein molecule"):
        saved = search(store, query, 20)
        exact = [seq for seq, _ in fts5(store, query, 20)]
        assert len(saved) == 20
        shared += len(set(saved) & set(exact))
    assert shared / 80 >= 0.8  # the same stems; BM25's IDF and lengths differ slightly


def test_words_in_few_papers_find_exactly_those(store: Engine) -> None:
    add_papers(store, 1, 200, seed=3)
    rng = random.Random(4)
    with store.begin() as connection:
        upsert_papers(connection, [paper(900 + i, rng, extra="zeolites") for i in range(3)])
    save_keyword_index(store)
    with store.connect() as connection:
        rare = connection.execute(
            select(papers.c.seq).where(papers.c.id.like("2401.009%"))
        ).scalars()
        assert set(search(store, "zeolites")) == set(rare)
    assert search(store, "nonexistentword") == []


def test_papers_added_after_a_save_are_found_at_once_and_the_next_save_reads_only_them(
    store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_papers(store, 1, 150, seed=5)
    save_keyword_index(store)
    rng = random.Random(6)
    with store.begin() as connection:
        upsert_papers(connection, [paper(500 + i, rng, extra="quasicrystal") for i in range(4)])
    assert len(search(store, "quasicrystal")) == 4  # FTS5 answers for the papers added since
    read = papers_read_while_saving(monkeypatch)
    assert save_keyword_index(store) == 154
    assert sum(read) == 4
    with store.connect() as connection:
        state = saved_state(connection)
        saved, _ = keyword_saved.opened(connection)
        assert (
            state.last_seq
            == connection.execute(select(papers.c.seq).order_by(papers.c.seq.desc()))
            .scalars()
            .first()
        )
        assert len(saved.top({stem("quasicrystal"): 1.0}, 10)) == 4  # now in the saved index
    assert len(search(store, "quasicrystal")) == 4  # and found once, not twice
    read.clear()
    assert save_keyword_index(store) == 154 and read == []


def test_an_edited_paper_is_found_by_its_new_words_only_before_and_after_the_next_save(
    store: Engine,
) -> None:
    add_papers(store, 1, 150, seed=7)
    rng = random.Random(8)
    with store.begin() as connection:
        upsert_papers(connection, [paper(700, rng, extra="perovskite")])
    save_keyword_index(store)
    seq = set_abstract(store, 700, "Thermoelectric skutterudite films.")
    for _ in range(2):  # before the save (the change is logged), then after it
        assert search(store, "perovskite") == []
        assert search(store, "skutterudite") == [seq]
        assert seq in search(store, "thermoelectric revised", 5)
        save_keyword_index(store)
    with store.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM keyword_changes").scalar() == 0


def test_unchanged_reimports_log_no_changes(store: Engine) -> None:
    add_papers(store, 1, 150, seed=9)
    save_keyword_index(store)
    add_papers(store, 1, 150, seed=9)  # the same snapshot again
    with store.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM keyword_changes").scalar() == 0


def test_a_deleted_paper_leaves_results_at_once_and_the_index_at_the_next_save(
    store: Engine,
) -> None:
    add_papers(store, 1, 150, seed=10)
    rng = random.Random(11)
    with store.begin() as connection:
        upsert_papers(connection, [paper(800 + i, rng, extra="ferrofluid") for i in range(2)])
    save_keyword_index(store)
    gone, kept = search(store, "ferrofluid")
    with store.begin() as connection:
        connection.execute(delete(papers).where(papers.c.seq == gone))
    assert search(store, "ferrofluid") == [kept]
    assert save_keyword_index(store) == 151
    assert search(store, "ferrofluid") == [kept]
    with store.connect() as connection:
        saved, _ = keyword_saved.opened(connection)
        assert [seq for seq, _ in saved.top({stem("ferrofluid"): 1.0}, 10)] == [kept]


def test_a_new_paper_given_a_deleted_papers_seq_is_found_by_its_own_words(store: Engine) -> None:
    add_papers(store, 1, 150, seed=12)
    save_keyword_index(store)
    with store.begin() as connection:
        last = connection.execute(select(papers.c.seq).order_by(papers.c.seq.desc())).scalar()
        connection.execute(delete(papers).where(papers.c.seq == last))
        upsert_papers(connection, [paper(999, random.Random(13), extra="magnetar")])
        reused = connection.execute(select(papers.c.id).where(papers.c.seq == last)).scalar()
    assert reused == "2401.00999"  # SQLite numbers it after the highest seq left
    assert search(store, "magnetar") == [last]
    save_keyword_index(store)
    assert search(store, "magnetar") == [last]


def test_filtered_searches_keep_to_the_filter(store: Engine) -> None:
    add_papers(store, 1, 150, seed=14)
    save_keyword_index(store)
    with store.begin() as connection:
        connection.execute(papers.update().where(papers.c.seq <= 10).values(upvotes=5))
    found = search(store, "graph pooling", 50, min_upvotes=5)
    assert found and all(seq <= 10 for seq in found)


def test_another_process_saving_is_followed_and_a_second_saver_waits_its_turn(
    store: Engine, tmp_path: Path
) -> None:
    add_papers(store, 1, 150, seed=15)
    save_keyword_index(store)
    with store.connect() as connection:
        before, _ = keyword_saved.opened(connection)
    rng = random.Random(16)
    with store.begin() as connection:
        upsert_papers(connection, [paper(600 + i, rng, extra="axion") for i in range(3)])
    script = (
        "import sys; from broadsheet.db.engine import make_engine;"
        "from broadsheet.search import keyword_saved;"
        "from broadsheet.search.keyword_index import save_keyword_index;"
        "keyword_saved.SAVED_FROM = 100;"
        "print(save_keyword_index(make_engine(sys.argv[1])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(store.url)], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "153"
    with store.connect() as connection:
        after, state = keyword_saved.opened(connection)
    assert after is not before and state.last_seq >= max(search(store, "axion"))
    assert len(after.top({stem("axion"): 1.0}, 10)) == 3
    assert len(before.top({stem("axion"): 1.0}, 10)) == 0  # the old reader still answers

    holder = keyword_saved._open(keywords_dir(store)).writer(heap_size=20_000_000)
    try:
        assert save_keyword_index(store) is None  # tantivy's lock is held: nothing half-written
    finally:
        holder.rollback()
        del holder
    assert len(search(store, "axion")) == 3


def test_an_edited_paper_scores_before_the_save_as_the_saved_index_scores_it_after(
    store: Engine,
) -> None:
    add_papers(store, 1, 200, seed=23)
    save_keyword_index(store)
    seq = set_abstract(store, 5, "Graph pooling for sparse kernel retrieval, with pooling.")
    with store.connect() as connection:
        before = {h.seq: h.score for h in lexical_search(connection, "graph pooling", 300)}
    save_keyword_index(store)
    with store.connect() as connection:
        after = {h.seq: h.score for h in lexical_search(connection, "graph pooling", 300)}
    assert before[seq] == pytest.approx(after[seq], rel=0.02)  # tantivy rounds lengths


def test_many_changes_since_the_save_are_answered_by_fts5_alone(
    store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_papers(store, 1, 150, seed=24)
    save_keyword_index(store)
    monkeypatch.setattr(keyword_saved, "STALE_MOST", 5)
    for number in range(1, 8):
        set_abstract(store, number, f"Sparse graph kernels, part {number}.")
    assert search(store, "sparse graph", 30) == [seq for seq, _ in fts5(store, "sparse graph", 30)]


def test_an_import_brings_a_saved_index_up_to_date_but_never_starts_one(
    store: Engine, tmp_path: Path
) -> None:
    add_papers(store, 1, 150, seed=25)
    snapshot = tmp_path / "more.jsonl"
    lines = [
        {"id": f"2402.{i:05d}", "title": f"Tokamak {i}", "abstract": "Plasma tokamak design."}
        for i in range(1, 6)
    ]
    snapshot.write_text("".join(orjson.dumps(line).decode() + "\n" for line in lines))
    import_file(store, snapshot)
    assert not keywords_dir(store).exists()  # only `index` starts one
    save_keyword_index(store)
    more = tmp_path / "more2.jsonl"
    more.write_text(
        "".join(
            orjson.dumps({**line, "id": line["id"].replace("2402", "2403")}).decode() + "\n"
            for line in lines
        )
    )
    import_file(store, more)
    with store.connect() as connection:
        saved, state = keyword_saved.opened(connection)
        newest = connection.execute(select(papers.c.seq).order_by(papers.c.seq.desc())).scalar()
        assert state.last_seq == newest  # taken in by the import itself
        assert len(saved.top({stem("tokamak"): 1.0}, 20)) == 10


KILLED_SAVE = """
import os, sys
from broadsheet.db.engine import make_engine
from broadsheet.search import keyword_saved
from broadsheet.search.keyword_index import save_keyword_index
keyword_saved.SAVED_FROM = 100
keyword_saved.READ_BATCH = 50
where = sys.argv[2]
if where == "adding":
    add, calls = keyword_saved._add, []
    def dies(*args):
        calls.append(1)
        if len(calls) == 2:
            os._exit(9)
        return add(*args)
    keyword_saved._add = dies
else:  # after tantivy's commit, before the store records it
    keyword_saved.uuid.uuid4 = lambda: os._exit(9)
save_keyword_index(make_engine(sys.argv[1]))
"""


@pytest.mark.parametrize("where", ["adding", "recording"])
@pytest.mark.parametrize("first", [True, False])
def test_a_save_killed_midway_leaves_searches_whole_and_the_next_save_finishes(
    store: Engine, where: str, first: bool
) -> None:
    add_papers(store, 1, 150, seed=17)
    if not first:
        save_keyword_index(store)
        rng = random.Random(18)
        with store.begin() as connection:
            upsert_papers(connection, [paper(300 + i, rng, extra="boson") for i in range(120)])
    killed = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(store.url), where])
    assert killed.returncode == 9
    for query in ("pooling graph", "boson", "sparse"):
        expected = [seq for seq, _ in fts5(store, query, 300)]
        found = search(store, query, 300)
        assert len(found) == len(set(found))  # nothing twice
        assert set(found) == set(expected)  # nothing missing
    total = 150 if first else 270
    assert save_keyword_index(store) == total
    assert uses_saved(store)
    assert len(search(store, "boson", 300)) == (0 if first else 120)


def test_missing_files_fall_back_to_fts5_and_the_next_save_rebuilds(store: Engine) -> None:
    add_papers(store, 1, 150, seed=19)
    save_keyword_index(store)
    expected = search(store, "pooling graph")
    folder = keywords_dir(store)
    for file in folder.iterdir():
        file.unlink()
    keyword_saved._opened.clear()
    assert not uses_saved(store)
    assert search(store, "pooling graph") == [seq for seq, _ in fts5(store, "pooling graph")]
    assert save_keyword_index(store) == 150
    assert uses_saved(store) and search(store, "pooling graph") == expected


def test_a_new_store_at_the_same_path_never_reads_the_old_stores_files(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    add_papers(engine, 1, 150, seed=20)
    save_keyword_index(engine)
    engine.dispose()
    for file in tmp_path.glob("store.db*"):
        if file.is_file():
            file.unlink()
    assert keywords_dir(engine).exists()
    keyword_saved._opened.clear()
    fresh = make_engine(f"sqlite:///{path}")
    migrate(fresh)
    add_papers(fresh, 1000, 150, seed=21)
    assert not uses_saved(fresh)
    assert save_keyword_index(fresh) == 150  # built afresh: the old papers are gone
    with fresh.connect() as connection:
        saved, _ = keyword_saved.opened(connection)
        seqs = {seq for seq, _ in saved.top({stem("graph"): 1.0}, 1000)}
        assert seqs <= set(connection.execute(select(papers.c.seq)).scalars())
    fresh.dispose()


def test_the_index_command_saves_it(cli, store: Engine) -> None:
    """``broadsheet index`` saves the keyword index of a large store and says so."""
    add_papers(store, 1, 120, seed=22)
    done = cli.invoke(app, ["index"])
    assert done.exit_code == 0, done.output
    assert "saved index of 120" in done.output
    assert tantivy.Index.exists(str(keywords_dir(store)))
    assert uses_saved(store)
