"""Revision 0017 on a store with members: their votes, comments and sessions survive it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import MetaData, func, insert, inspect, select

from broadsheet.db.engine import alembic_config, make_engine, migrate
from databases import drop_database, new_database_url

NOW = datetime(2026, 12, 1)


@pytest.fixture
def empty_url(tmp_path: Path) -> Iterator[str]:
    url = new_database_url(tmp_path, "old", migrated=False)
    yield url
    drop_database(url)


def test_members_and_what_hangs_off_them_survive_the_upgrade(empty_url: str) -> None:
    engine = make_engine(empty_url)
    command.upgrade(alembic_config(engine), "0016")
    old = MetaData()
    old.reflect(engine, only=["users", "papers", "votes", "comments"])
    users, papers, votes, comments = (
        old.tables[n] for n in ("users", "papers", "votes", "comments")
    )
    with engine.begin() as connection:
        connection.execute(
            insert(users).values(id=1, username="ada", password_hash="x", created_at=NOW)
        )
        connection.execute(
            insert(papers).values(
                seq=1, id="2401.00001", title="T", title_raw="T", abstract="A", abstract_raw="A",
                authors=[], categories="", links={}, upvotes=0, source="test",
                record_hash="h", created_at=NOW, modified_at=NOW,
            )
        )  # fmt: skip
        connection.execute(insert(votes).values(user_id=1, paper_id="2401.00001", created_at=NOW))
        connection.execute(
            insert(comments).values(paper_id="2401.00001", user_id=1, body="Hi", created_at=NOW)
        )
    migrate(engine)
    assert "email_verified_at" in {c["name"] for c in inspect(engine).get_columns("users")}
    with engine.connect() as connection:
        for table in (users, votes, comments):
            assert connection.execute(select(func.count()).select_from(table)).scalar() == 1
    migrate(engine)  # again: nothing to do
    engine.dispose()
