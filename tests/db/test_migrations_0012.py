"""Revision 0012 on a store from before it: one subscription per mailbox, whatever the case."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from broadsheet.db.engine import alembic_config, make_engine, migrate
from broadsheet.db.schema import subscribers
from databases import drop_database, new_database_url

CREATED = datetime(2025, 6, 1)


@pytest.fixture
def empty_url(tmp_path: Path) -> Iterator[str]:
    """A store with no schema yet, so that it can stop at an old revision."""
    url = new_database_url(tmp_path, "old", migrated=False)
    yield url
    drop_database(url)


def _old_store(database_url: str) -> Engine:
    engine = make_engine(database_url)
    command.upgrade(alembic_config(engine), "0011")
    return engine


def _add(engine: Engine, email: str, status: str, **values: object) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(subscribers).values(email=email, status=status, created_at=CREATED, **values)
        )


def _rows(engine: Engine) -> list[tuple]:
    with engine.connect() as connection:
        return connection.execute(
            select(subscribers.c.email, subscribers.c.status).order_by(subscribers.c.id)
        ).all()


def test_case_duplicates_merge_keeping_the_confirmed_row(empty_url: str) -> None:
    engine = _old_store(empty_url)
    _add(engine, "ann@x.org", "pending")
    _add(engine, "Ann@x.org", "confirmed", confirmed_at=CREATED)
    _add(engine, "ANN@x.org", "unsubscribed")
    _add(engine, "bob@x.org", "pending")
    migrate(engine)
    assert _rows(engine) == [("Ann@x.org", "confirmed"), ("bob@x.org", "pending")]
    with pytest.raises(IntegrityError):  # the index holds from now on
        _add(engine, "BOB@x.org", "pending")
    assert len(_rows(engine)) == 2
    engine.dispose()


def test_a_store_without_duplicates_upgrades_unchanged(empty_url: str) -> None:
    engine = _old_store(empty_url)
    _add(engine, "ann@x.org", "pending")
    _add(engine, "bob@x.org", "confirmed")
    migrate(engine)
    migrate(engine)
    assert _rows(engine) == [("ann@x.org", "pending"), ("bob@x.org", "confirmed")]
    engine.dispose()
