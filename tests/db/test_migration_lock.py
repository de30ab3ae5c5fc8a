"""Several machines migrating one empty store at once: one migrates, the others wait for it and
find the schema at head, and every one of them starts."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from broadsheet.db.engine import alembic_config, make_engine, migrate
from broadsheet.db.migrating import hold_migration_lock
from databases import drop_database, new_database_url
from helpers import run_env

MACHINES = 3


@pytest.fixture
def empty_url(tmp_path: Path) -> Iterator[str]:
    url = new_database_url(tmp_path, "empty", migrated=False)
    yield url
    drop_database(url)


def _at_head(url: str) -> bool:
    engine = make_engine(url)
    try:
        heads = ScriptDirectory.from_config(alembic_config(engine)).get_heads()
        with engine.connect() as connection:
            return set(MigrationContext.configure(connection).get_current_heads()) == set(heads)
    finally:
        engine.dispose()


# Each process imports and connects, then waits for one moment to migrate, so they meet.
MIGRATE_AT = """
import sys, time
from broadsheet.db.engine import make_engine, migrate
engine = make_engine(sys.argv[1])
engine.connect().close()
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
migrate(engine)
"""


def test_processes_migrating_an_empty_store_at_once_all_succeed(empty_url: str) -> None:
    at = str(time.time() + 5)
    machines = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE_AT, empty_url, at],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(MACHINES)
    ]
    outputs = [machine.communicate(timeout=120)[0] for machine in machines]
    assert [machine.returncode for machine in machines] == [0] * MACHINES, outputs
    assert _at_head(empty_url)


def test_db_upgrade_run_on_three_machines_at_once_exits_0_on_each(empty_url: str) -> None:
    command = [sys.executable, "-m", "broadsheet.cli", "db", "upgrade"]
    runs = [
        subprocess.Popen(
            command,
            env=run_env(empty_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(MACHINES)
    ]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0] * MACHINES, outputs
    assert _at_head(empty_url)
    created = [output for output in outputs if "created the schema" in output]
    assert len(created) == 1, outputs  # one made it; the others found it made
    assert all("up to date" in output for output in outputs if output not in created), outputs


def test_a_store_at_head_opens_while_a_migration_lock_is_held(store: Engine) -> None:
    """Start-ups on a migrated store wait for no one (on SQLite: for no writer)."""
    with store.connect() as holder, holder.begin():
        hold_migration_lock(holder)
        opener = make_engine(store.url.render_as_string(hide_password=False))
        done = threading.Thread(target=migrate, args=(opener,), daemon=True)
        started = time.monotonic()
        done.start()
        done.join(10)
        assert not done.is_alive() and time.monotonic() - started < 5
        opener.dispose()
