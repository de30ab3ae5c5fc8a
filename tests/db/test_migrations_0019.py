"""0019 adds the worker's job runs, late-job alerts and the admin audit log to a store with
members in it, hands out no id twice, and goes back down leaving the members as they were."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import MetaData, delete, func, insert, inspect, select

from broadsheet.db.engine import alembic_config, make_engine, migrate
from databases import drop_database, new_database_url

NOW = datetime(2026, 12, 7)
NEW_TABLES = {"job_runs", "job_alerts", "admin_audit"}


@pytest.fixture
def empty_url(tmp_path: Path) -> Iterator[str]:
    url = new_database_url(tmp_path, "old", migrated=False)
    yield url
    drop_database(url)


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_upgrade_keeps_members_and_downgrade_takes_only_the_new_tables(empty_url: str) -> None:
    engine = make_engine(empty_url)
    config = alembic_config(engine)
    command.upgrade(config, "0018")
    old = MetaData()
    old.reflect(engine, only=["users"])
    users = old.tables["users"]
    with engine.begin() as connection:
        for name in ["ada", "bob"]:
            connection.execute(
                insert(users).values(
                    username=name, password_hash="x", created_at=NOW, session_key=f"{name}-key"
                )
            )
    assert not NEW_TABLES & set(inspect(engine).get_table_names())

    command.upgrade(config, "0019")
    assert set(inspect(engine).get_table_names()) >= NEW_TABLES
    new = MetaData()
    new.reflect(engine, only=["users", *NEW_TABLES])
    users, runs, audit = (new.tables[n] for n in ["users", "job_runs", "admin_audit"])
    with engine.begin() as connection:
        assert connection.execute(select(func.count()).select_from(users)).scalar() == 2
        run_ids = []
        for _ in range(2):
            run_ids.append(
                connection.execute(
                    insert(runs)
                    .values(job="index", started_at=NOW, outcome="ok", counts={"embedded": 3},
                            worker="host:1")
                    .returning(runs.c.id)
                ).scalar_one()
            )  # fmt: skip
        connection.execute(delete(runs).where(runs.c.id == run_ids[-1]))  # the newest goes
        again = connection.execute(
            insert(runs)
            .values(job="index", started_at=NOW, outcome="running", counts={}, worker="host:1")
            .returning(runs.c.id)
        ).scalar_one()
        assert again > run_ids[-1]  # never the id of the deleted run
        connection.execute(
            insert(audit).values(
                at=NOW, actor_id=1, action="member.disable", target="user:2", detail={"why": "x"}
            )
        )
        connection.execute(delete(users).where(users.c.id == 1))  # the admin's account goes
        entry = connection.execute(select(audit)).one()
        assert entry.actor_id is None and entry.action == "member.disable"  # the entry stays
        assert entry.detail == {"why": "x"}

    command.downgrade(config, "0018")
    assert not NEW_TABLES & set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        names = connection.execute(select(users.c.username)).scalars().all()
    assert names == ["bob"]
    migrate(engine)  # and up again, to the newest
    assert set(inspect(engine).get_table_names()) >= NEW_TABLES
    engine.dispose()
