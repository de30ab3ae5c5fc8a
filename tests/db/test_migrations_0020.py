"""0020 gives members a "disabled" mark (empty for everyone) and adds comment reports, keeps
every member, and goes back down leaving the members as they were, the case-insensitive
username index whole."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import MetaData, func, insert, inspect, select
from sqlalchemy.exc import IntegrityError

from broadsheet.db.engine import alembic_config, make_engine, migrate
from databases import drop_database, new_database_url

NOW = datetime(2026, 12, 7)


@pytest.fixture
def empty_url(tmp_path: Path) -> Iterator[str]:
    url = new_database_url(tmp_path, "old", migrated=False)
    yield url
    drop_database(url)


def _users(engine):
    reflected = MetaData()
    reflected.reflect(engine, only=["users"])
    return reflected.tables["users"]


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_upgrade_keeps_members_and_downgrade_takes_only_what_it_added(empty_url: str) -> None:
    engine = make_engine(empty_url)
    config = alembic_config(engine)
    command.upgrade(config, "0019")
    users = _users(engine)
    with engine.begin() as connection:
        for name in ["ada", "bob"]:
            connection.execute(
                insert(users).values(
                    username=name, password_hash="x", created_at=NOW, session_key=f"{name}-key"
                )
            )
    command.upgrade(config, "0020")
    users = _users(engine)
    with engine.connect() as connection:
        not_disabled = select(func.count()).where(users.c.disabled_at.is_(None))
        assert connection.execute(not_disabled).scalar() == 2
    assert "comment_reports" in inspect(engine).get_table_names()

    command.downgrade(config, "0019")
    assert "comment_reports" not in inspect(engine).get_table_names()
    users = _users(engine)
    assert "disabled_at" not in users.c
    with engine.begin() as connection:
        assert connection.execute(select(func.count()).select_from(users)).scalar() == 2
        with pytest.raises(IntegrityError), connection.begin_nested():
            connection.execute(
                insert(users).values(
                    username="ADA", password_hash="x", created_at=NOW, session_key="k"
                )
            )
    migrate(engine)
    assert "disabled_at" in _users(engine).c
    engine.dispose()


def test_a_member_reports_a_comment_once_and_report_ids_are_never_reused(store) -> None:
    from sqlalchemy import delete

    from broadsheet.community.accounts import create_member
    from broadsheet.community.comments import add_comment
    from broadsheet.community.reports import report_comment
    from broadsheet.db.schema import comment_reports
    from broadsheet.papers.repository import upsert_papers
    from web.test_community import _paper

    with store.begin() as connection:
        upsert_papers(connection, [_paper("2401.00001")])
    ada, bob = (create_member(store, n, "long enough password") for n in ("ada", "bob"))
    comment = add_comment(store, ada, "2401.00001", "hello")
    report_comment(store, bob, comment.id, "one")
    report_comment(store, bob, comment.id, "two")
    with store.begin() as connection:
        [(first, reason)] = connection.execute(
            select(comment_reports.c.id, comment_reports.c.reason)
        ).all()
        assert reason == "two"
        connection.execute(delete(comment_reports))
    report_comment(store, bob, comment.id, "three")
    with store.connect() as connection:
        assert connection.execute(select(comment_reports.c.id)).scalar_one() > first
