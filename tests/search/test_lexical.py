"""Lexical search: BM25 in the keyword index, safe query building, filters, indexing in step
with imports, on the engine the tests run on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from broadsheet.db.engine import make_engine
from broadsheet.ingest.runner import import_file
from broadsheet.papers.record import Paper
from broadsheet.papers.repository import upsert_papers
from broadsheet.search.filters import SearchFilters
from broadsheet.search.lexical import lexical_search, match_expression, query_terms
from databases import ON_POSTGRES, drop_database, new_database_url
from keyword_checks import assert_keyword_index_whole

TOPICS = Path(__file__).parents[1] / "fixtures" / "daily_papers" / "topics.json"


@pytest.fixture
def topics_store(store: Engine) -> Engine:
    """The topic papers in this test's own store (SQLite or PostgreSQL); no vectors needed."""
    import_file(store, TOPICS)
    return store


@pytest.fixture(scope="module")
def topics_store_for_fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One topic store for property tests that run many examples (read-only)."""
    url = new_database_url(tmp_path_factory.mktemp("fuzz"), migrated=True)
    engine = make_engine(url)
    if not ON_POSTGRES:
        from broadsheet.db.engine import migrate

        migrate(engine)
    import_file(engine, TOPICS)
    yield engine
    engine.dispose()
    drop_database(url)


def ids(store: Engine, query: str, **filters) -> list[str]:
    with store.connect() as connection:
        hits = lexical_search(connection, query, 50, SearchFilters(**filters) if filters else None)
        seqs = [h.seq for h in hits]
        rows = dict(connection.exec_driver_sql("SELECT seq, id FROM papers").all())
    return [rows[s] for s in seqs]


def test_query_terms_drop_stop_words_and_syntax() -> None:
    assert query_terms('The "pooling" AND (layers* NEAR sets') == [
        "pooling",
        "layers",
        "near",
        "sets",
    ]
    assert query_terms("the of") == ["the", "of"]  # nothing but stop words: keep them
    assert query_terms("") == [] and match_expression("  ") is None
    assert len(query_terms(" ".join(f"w{i}" for i in range(500)))) == 64


def test_bm25_ranks_title_matches_first(topics_store: Engine) -> None:
    found = ids(topics_store, "normalization")
    assert found[0] == "2401.00002"
    assert ids(topics_store, "protein sequence structure")[0] == "2401.00004"


def test_stemming_matches_other_word_forms(topics_store: Engine) -> None:
    assert "2401.00002" in ids(topics_store, "normalizing")
    assert "2401.00012" in ids(topics_store, "pool")


def test_filters(topics_store: Engine) -> None:
    everything = ids(topics_store, "learning")
    assert "2401.00010" not in ids(topics_store, "learning", since=date(2023, 1, 1))
    assert set(ids(topics_store, "learning", category="cs")) <= set(everything)
    assert ids(topics_store, "images", organisation="diffusionlab") == ["2401.00003"]
    assert ids(topics_store, "images", organisation="nobody") == []
    assert ids(topics_store, "learning", min_upvotes=20) == ["2401.00006"]


def test_new_paper_is_found_at_once_and_edits_reindex(topics_store: Engine) -> None:
    paper = Paper(
        id="2402.00001",
        title_raw="Zebrafish fin regeneration",
        abstract_raw="Fins regrow.",
        source="test",
        version=1,
        published_at=datetime(2024, 2, 1),
    )
    with topics_store.begin() as connection:
        upsert_papers(connection, [paper])
    assert ids(topics_store, "zebrafish") == ["2402.00001"]
    paper.version, paper.title_raw = 2, "Axolotl limb regeneration"
    with topics_store.begin() as connection:
        upsert_papers(connection, [paper])
    assert ids(topics_store, "zebrafish") == []
    assert ids(topics_store, "axolotl") == ["2402.00001"]


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_a_valid_query(topics_store_for_fuzz: Engine, text: str) -> None:
    with topics_store_for_fuzz.connect() as connection:
        hits = lexical_search(connection, text, 10)
    assert all(h.score >= 0 for h in hits)


def test_hostile_queries(topics_store: Engine) -> None:
    for query in [
        '"',
        "*",
        "NEAR",
        "AND",
        "OR NOT",
        "((pooling",
        "pooling)",
        "'; DROP TABLE papers; --",
        "x" * 10000,
        "深度学习 神经网络",
        "нормализация",
        "😀 pooling",
        "title:pooling",
        "^pooling",
    ]:
        ids(topics_store, query)
    assert "2401.00001" in ids(topics_store, "((pooling")
    assert "2401.00001" in ids(topics_store, "😀 pooling")
    with topics_store.connect() as connection:  # the SQL in the query was only words
        assert connection.exec_driver_sql("SELECT count(*) FROM papers").scalar() == 12


def test_large_stores_skip_very_common_terms(topics_store: Engine, monkeypatch) -> None:
    from broadsheet.search import lexical

    monkeypatch.setattr(lexical, "PRUNE_FROM_PAPERS", 10)  # treat the 12-paper store as large
    with topics_store.connect() as connection:
        # "learning" is in more than a fifth of the papers; "robot" in one
        assert lexical.prune_common_terms(connection, ["learning", "robot"], 12) == ["robot"]
        assert lexical.prune_common_terms(connection, ["learning"], 12) == ["learning"]
        monkeypatch.setattr(lexical, "PRUNE_FROM_PAPERS", 20_000)
        assert lexical.prune_common_terms(connection, ["learning", "robot"], 12) == [
            "learning",
            "robot",
        ]
        monkeypatch.setattr(lexical, "PRUNE_FROM_PAPERS", 10)
        pruned = lexical_search(connection, "learning robot", 10, papers_count=12)
        full = lexical_search(connection, "learning robot", 10)
    assert len(pruned) < len(full)
    assert pruned[0].seq == full[0].seq  # the robot paper leads either way


def _import_edit_and_delete(store: Engine, tmp_path: Path) -> None:
    """1,200 papers imported; paper 7 renamed "Zebrafish" by a new version, paper 8 deleted."""
    from snapshot_gen import write_snapshot

    import_file(store, write_snapshot(tmp_path / "snap.jsonl", 1200), batch_size=500)
    with store.connect() as connection:
        paper_id = connection.exec_driver_sql("SELECT id FROM papers WHERE seq = 7").scalar()
    edited = Paper(
        id=paper_id,
        title_raw="Zebrafish",
        abstract_raw="Fins regrow.",
        source="test",
        version=99,
        published_at=datetime(2024, 2, 1),
    )
    with store.begin() as connection:
        upsert_papers(connection, [edited])
        connection.exec_driver_sql("DELETE FROM papers WHERE seq = 8")


@pytest.mark.skipif(ON_POSTGRES, reason="FTS5 is SQLite's index; PostgreSQL's test follows")
def test_index_stays_consistent_through_import_update_and_delete(store: Engine, tmp_path) -> None:
    from broadsheet.ingest.runner import import_file
    from snapshot_gen import write_snapshot

    import_file(store, write_snapshot(tmp_path / "snap.jsonl", 1200), batch_size=500)
    with store.begin() as connection:
        connection.exec_driver_sql("UPDATE papers SET title = 'Zebrafish' WHERE seq = 7")
        connection.exec_driver_sql("DELETE FROM papers WHERE seq = 8")
    with store.connect() as connection:
        # FTS5 compares its index with the papers table and raises on any difference
        connection.exec_driver_sql(
            "INSERT INTO papers_fts(papers_fts, rank) VALUES ('integrity-check', 1)"
        )
        indexed = connection.exec_driver_sql("SELECT count(*) FROM papers_fts").scalar()
        assert [h.seq for h in lexical_search(connection, "zebrafish", 5)] == [7]
    assert indexed == 1199


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's postings; SQLite's FTS5 test is above")
def test_postings_stay_consistent_through_import_update_and_delete(
    store: Engine, tmp_path: Path
) -> None:
    _import_edit_and_delete(store, tmp_path)
    with store.connect() as connection:
        assert_keyword_index_whole(connection)
        docs = connection.exec_driver_sql("SELECT count(*) FROM keyword_docs").scalar_one()
        assert [h.seq for h in lexical_search(connection, "zebrafish", 5)] == [7]
    assert docs == 1199
