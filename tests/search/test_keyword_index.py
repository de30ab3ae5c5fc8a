"""Both keyword indexes on the same papers: the same words, the same BM25, the same rankings."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from broadsheet.db.engine import make_engine, migrate
from broadsheet.ingest.runner import import_file
from broadsheet.search.filters import SearchFilters
from broadsheet.search.keyword_index import (
    PostgresKeywordIndex,
    SqliteKeywordIndex,
    document_terms,
    for_engine,
    tokens,
)
from broadsheet.search.lexical import query_terms
from databases import ON_POSTGRES
from keyword_checks import POSTINGS

QUERIES = [
    "attention mechanism",
    "large language models",
    "reinforcement learning from human feedback",
    "diffusion image generation",
    "normalizing normalization",  # two words, one stem: FTS5 counts it twice
    "Décodage naïve",
    "zxqvw",
]


def _ranking(store: Engine, query: str, **filters) -> list[tuple[str, float]]:
    with store.connect() as connection:
        found = for_engine(connection).search(
            connection, query_terms(query), 10, SearchFilters(**filters) if filters else None
        )
        ids = dict(connection.exec_driver_sql("SELECT seq, id FROM papers").all())
    return [(ids[seq], score) for seq, score in found]


@pytest.fixture
def sqlite_daily(tmp_path: Path, daily_papers_file: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'daily.db'}")
    migrate(engine)
    import_file(engine, daily_papers_file)
    yield engine
    engine.dispose()


def test_each_engine_has_its_own_index(store: Engine) -> None:
    with store.connect() as connection:
        index = for_engine(connection)
    expected = PostgresKeywordIndex if ON_POSTGRES else SqliteKeywordIndex
    assert isinstance(index, expected)


def test_postgres_tokenizer_finds_the_words_fts5_indexes(sqlite_daily: Engine) -> None:
    """PostgreSQL's postings must hold FTS5's own vocabulary: "is" unstemmed, "grokking" ->
    "grok", "flexibly" -> "flexibl", as FTS5's original Porter stemmer has them."""
    with sqlite_daily.connect() as connection:
        fts5 = dict(connection.exec_driver_sql("SELECT term, doc FROM papers_fts_vocab").all())
        counted: dict[str, int] = {}
        for title, abstract in connection.exec_driver_sql("SELECT title, abstract FROM papers"):
            for term in set(tokens(title)) | set(tokens(abstract)):
                counted[term] = counted.get(term, 0) + 1
    assert len(fts5) > 5000
    assert counted == fts5


@pytest.mark.skipif(not ON_POSTGRES, reason="compares PostgreSQL's index with SQLite's")
def test_postgres_ranks_as_fts5_does(
    store: Engine, sqlite_daily: Engine, daily_papers_file: Path
) -> None:
    import_file(store, daily_papers_file)
    for query in QUERIES:
        sqlite, postgres = _ranking(sqlite_daily, query), _ranking(store, query)
        assert [i for i, _ in postgres] == [i for i, _ in sqlite], query
        for (_, expected), (_, score) in zip(sqlite, postgres, strict=True):
            assert math.isclose(score, expected, rel_tol=1e-6), query
    filtered = {"min_upvotes": 10, "category": "cs.CL"}
    assert _ranking(store, "language models", **filtered) == pytest.approx(
        _ranking(sqlite_daily, "language models", **filtered)
    )


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's document counts")
def test_document_counts_agree(store: Engine, sqlite_daily: Engine, daily_papers_file) -> None:
    import_file(store, daily_papers_file)
    stems = ["attent", "model", "zxqvw", "transform"]
    with store.connect() as postgres, sqlite_daily.connect() as sqlite:
        assert for_engine(postgres).document_counts(postgres, stems) == for_engine(
            sqlite
        ).document_counts(sqlite, stems)


def _postings(store: Engine) -> set[tuple[str, str, int, int]]:
    with store.connect() as connection:
        return set(
            connection.exec_driver_sql(
                f"SELECT t.term, papers.id, u.tf, u.length FROM {POSTINGS}"
                " JOIN papers ON papers.seq = u.seq"
            )
        )


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's migration builds its postings")
def test_upgrading_a_store_indexes_the_papers_it_holds(store: Engine, tmp_path: Path) -> None:
    from alembic import command

    from broadsheet.db.engine import alembic_config
    from snapshot_gen import write_snapshot

    import_file(store, write_snapshot(tmp_path / "snap.jsonl", 1200), batch_size=500)
    indexed, ranked = _postings(store), _ranking(store, "learning")
    command.downgrade(alembic_config(store), "0012")  # a store from before the keyword index
    with store.connect() as connection:
        assert not connection.exec_driver_sql("SELECT to_regclass('keyword_terms')").scalar()
    command.upgrade(alembic_config(store), "head")
    assert len(indexed) > 10_000
    assert _postings(store) == indexed
    assert _ranking(store, "learning") == ranked and ranked


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's postings change layout in 0014")
def test_blocks_of_postings_go_back_to_rows_and_return(store: Engine, tmp_path: Path) -> None:
    from alembic import command

    from broadsheet.db.engine import alembic_config
    from snapshot_gen import write_snapshot

    import_file(store, write_snapshot(tmp_path / "snap.jsonl", 700), batch_size=300)
    indexed, ranked = _postings(store), _ranking(store, "learning")
    command.downgrade(alembic_config(store), "0013")  # one row per posting
    with store.connect() as connection:
        rows = set(
            connection.exec_driver_sql(
                "SELECT t.term, papers.id, p.tf, p.length FROM keyword_postings p"
                " JOIN keyword_terms t ON t.id = p.term_id JOIN papers ON papers.seq = p.paper_seq"
            )
        )
        connection.exec_driver_sql("SELECT keyword_forget(ARRAY[1, 2])")  # the 0013 function
    assert rows == indexed
    command.upgrade(alembic_config(store), "head")
    assert _postings(store) == indexed
    assert _ranking(store, "learning") == ranked


def test_fast_tokenizer_agrees_with_fts5_on_any_text() -> None:
    """Text is split in Python and its words stemmed once each; the result must be what FTS5's
    tokenizer gives for the whole text: punctuation, digits, case, accents and scripts."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from broadsheet.search.keyword_index import _tokenizer, documents_terms

    words = st.sampled_from(
        [
            *["grokking", "flexibly", "Is", "the", "3D", "x_1", "don't", "GPT-4o", "naïve"],
            *["über", "α-stable", "İstanbul", "e\u0301t\u00e9", "a–b", "ΣΑΣ", "x\u00a0y", "²"],
            "ﬁne",
        ]
    )
    texts = st.one_of(
        st.none(),
        st.text(max_size=80),
        st.lists(st.one_of(words, st.text(alphabet=" ,.-_'()[]$\\0123456789aZ", max_size=6))).map(
            " ".join
        ),
    )

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.tuples(texts, texts), min_size=1, max_size=4))
    def agree(pairs: list[tuple[str | None, str | None]]) -> None:
        assert documents_terms(pairs) == _tokenizer.documents(pairs)

    agree()


@pytest.mark.skipif(not ON_POSTGRES, reason="concurrent importers on one PostgreSQL store")
def test_concurrent_imports_keep_postings_and_totals_whole(store: Engine, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from snapshot_gen import write_snapshot

    lines = write_snapshot(tmp_path / "snap.jsonl", 1600).read_bytes().splitlines(keepends=True)
    halves = [tmp_path / "first.jsonl", tmp_path / "second.jsonl"]
    halves[0].write_bytes(b"".join(lines[::2]))
    halves[1].write_bytes(b"".join(lines[1::2]))
    with ThreadPoolExecutor(2) as pool:  # both add new terms at once, in batches of 100
        list(pool.map(lambda path: import_file(store, path, batch_size=100), halves))
    with store.connect() as connection:
        lengths = {}
        for seq, title, abstract in connection.exec_driver_sql(
            "SELECT seq, title, abstract FROM papers"
        ):
            lengths[seq] = document_terms(title, abstract)[1]
        totals = connection.exec_driver_sql(
            "SELECT sum(docs), sum(total_length) FROM keyword_stats"
        ).one()
        duplicates = connection.exec_driver_sql(
            "SELECT count(*) - count(DISTINCT term) FROM keyword_terms"
        ).scalar()
    assert len(lengths) == 1600 and duplicates == 0
    assert tuple(totals) == (1600, sum(lengths.values()))


def test_the_tokenizer_gives_each_thread_its_own_documents() -> None:
    """Web requests index papers from several threads at once: each thread tokenizes in a
    scratch table of its own and sees only its own texts."""
    from concurrent.futures import ThreadPoolExecutor

    from broadsheet.search.keyword_index import _tokenizer

    texts = {
        n: [(f"title{n} alpha{k}", f"abstract{n} beta{k} gamma{n}") for k in range(300)]
        for n in range(4)
    }
    expected = {n: _tokenizer.documents(pairs) for n, pairs in texts.items()}

    def tokenize_often(n: int) -> bool:
        return all(_tokenizer.documents(texts[n]) == expected[n] for _ in range(30))

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(tokenize_often, texts))
