from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import IntegrityError

from broadsheet.config import get_settings
from broadsheet.db.bulk import bulk_insert
from broadsheet.db.engine import foreign_keys_unchecked, make_engine, migrate
from broadsheet.db.schema import feed_entries, metadata, organisations, papers
from databases import ON_POSTGRES


def test_migration_creates_every_table(store: Engine) -> None:
    tables = set(inspect(store).get_table_names())
    assert set(metadata.tables) <= tables
    assert "alembic_version" in tables


def test_migration_is_repeatable_and_schema_matches_models(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    migrate(engine)
    inspector = inspect(engine)
    for table in metadata.sorted_tables:
        assert {c["name"] for c in inspector.get_columns(table.name)} == set(table.c.keys())


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite PRAGMAs; the server's counterpart is below")
def test_sqlite_runs_in_wal_mode_with_foreign_keys(store: Engine) -> None:
    with store.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_bulk_insert_converts_types_and_ignores_conflicts(store: Engine) -> None:
    now = datetime(2024, 1, 2, 3, 4, 5)
    row = {
        "id": "2401.00001",
        "version": 1,
        "title": "T",
        "title_raw": "T",
        "abstract": "A",
        "abstract_raw": "A",
        "authors": ["Ada"],
        "primary_category": None,
        "categories": "",
        "organisation_id": None,
        "published_at": now,
        "updated_at": None,
        "comment": None,
        "doi": None,
        "journal_ref": None,
        "report_no": None,
        "license": None,
        "links": {"code": "x"},
        "upvotes": 0,
        "source": "t",
        "record_hash": "h",
        "created_at": now,
        "modified_at": now,
    }
    with store.begin() as connection:
        bulk_insert(connection, papers, [row])
        entry = {
            "paper_id": "2401.00001",
            "day": date(2024, 1, 2),
            "source": "s",
            "submitted_by": None,
            "created_at": now,
        }
        bulk_insert(
            connection, feed_entries, [entry, entry], ignore_conflicts_on=["paper_id", "day"]
        )
        bulk_insert(connection, organisations, [])
    with store.connect() as connection:
        stored = connection.execute(select(papers)).mappings().one()
        assert connection.execute(select(feed_entries.c.day)).scalars().all() == [date(2024, 1, 2)]
    assert stored["authors"] == ["Ada"]
    assert stored["links"] == {"code": "x"}
    assert stored["published_at"] == now


def test_bulk_rows_keep_awkward_text_and_skip_conflicts_batch_after_batch(store: Engine) -> None:
    """What COPY's text format must escape arrives intact; two conflict-skipping batches in one
    transaction each skip what exists (their staging tables must not collide)."""
    from broadsheet.db.bulk import insert_values
    from broadsheet.db.schema import authors

    awkward = ["tab\there", "new\nline", "back\\slash \\N", "\\.", "NULL", "é 数学 😀", " "]
    with store.begin() as connection:
        insert_values(connection, authors, ["name"], [(n,) for n in awkward[:4]], ["name"])
        insert_values(connection, authors, ["name"], [(n,) for n in awkward], ["name"])
        insert_values(connection, authors, ["name"], [(n,) for n in reversed(awkward)], ["name"])
    with store.connect() as connection:
        names = connection.execute(select(authors.c.name)).scalars().all()
    assert sorted(names) == sorted(awkward)
    with pytest.raises(IntegrityError), store.begin() as connection:  # without skipping: refused
        insert_values(connection, authors, ["name"], [(awkward[0],)])


@pytest.mark.skipif(not ON_POSTGRES, reason="the SQLite PRAGMAs are checked above")
def test_a_database_server_store_checks_connections_and_commits_by_statement(
    store: Engine,
) -> None:
    assert store.pool._pre_ping  # a restarted server or a proxy's idle cut: reconnect
    with store.connect() as connection:
        isolation = connection.exec_driver_sql("SHOW transaction_isolation").scalar()
        assert isolation == "read committed"  # what the claims and counters are written for


@pytest.mark.skipif(not ON_POSTGRES, reason="SQLite skips the lookups: checked below")
def test_foreign_keys_stay_checked_on_a_database_server_even_inside_the_block(
    store: Engine,
) -> None:
    orphan = "INSERT INTO paper_categories (paper_id, category) VALUES ('no-such-paper', 'cs.LG')"
    with store.connect() as connection:
        with pytest.raises(IntegrityError), foreign_keys_unchecked(connection), connection.begin():
            connection.exec_driver_sql(orphan)
        assert connection.exec_driver_sql("SELECT count(*) FROM paper_categories").scalar() == 0


@pytest.mark.skipif(ON_POSTGRES, reason="PostgreSQL always checks: its counterpart is above")
def test_foreign_keys_unchecked_only_inside_the_block(store: Engine) -> None:
    orphan = "INSERT INTO paper_categories (paper_id, category) VALUES ('no-such-paper', 'cs.LG')"
    with store.connect() as connection:
        with foreign_keys_unchecked(connection), connection.begin():
            connection.exec_driver_sql(orphan)  # accepted: nothing is looked up
            connection.exec_driver_sql("DELETE FROM paper_categories")
        with pytest.raises(IntegrityError), connection.begin():
            connection.exec_driver_sql(orphan)
        with pytest.raises(RuntimeError), foreign_keys_unchecked(connection):
            raise RuntimeError("a failed batch")
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


@pytest.mark.skipif(not ON_POSTGRES, reason="a SQLite file needs no pool of server connections")
def test_database_server_pool_size_comes_from_the_settings(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROADSHEET_DB_POOL_SIZE", "3")
    get_settings.cache_clear()
    try:
        engine = make_engine(database_url)
    finally:
        get_settings.cache_clear()
    assert engine.pool.size() == 3 and engine.pool._pre_ping
    engine.dispose()
