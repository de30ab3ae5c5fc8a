"""One migrator at a time, and what an upgrade found and left.

Machines that start together on one new store each run the migrations. Each takes the
migration lock in its migration's transaction before it reads the store's revision, so one
migrates while the others wait, and they then find the schema at head and change nothing
(without the lock, all but one failed, on a table or an ``alembic_version`` row the first had
made meanwhile). The lock is the first a migration takes and is held to its commit (see the
lock order in ``db/version.py``). A store found at head already is not locked: a start-up
then waits for no writer, and a read-only store still opens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from alembic import command
from sqlalchemy import Connection, Engine, text

# pg_advisory_xact_lock's bigint key: crc32("broadsheet migrations"), the same on every machine
# (the bigint keys and the two-int4 keys of db/work_locks.py never overlap).
MIGRATION_LOCK_KEY = 2_948_900_967
FOUND = "broadsheet.found_revision"  # what a run found under the lock, in the config's attributes


def _advisory_lock(connection: Connection) -> None:
    """PostgreSQL: wait for, then hold until commit, the migrations' advisory lock (it blocks no
    row or table, and a process that dies lets go with its connection)."""
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})


def _write_lock(connection: Connection) -> None:
    """SQLite: begin the migration's transaction holding the store's write lock, waiting (the
    busy timeout) for another process's migration to commit. The whole migration is then one
    transaction, rolled back as a whole when a step fails."""
    connection.connection.driver_connection.execute("BEGIN IMMEDIATE")


_LOCKS: dict[str, Callable[[Connection], None]] = {
    "sqlite": _write_lock,
    "postgresql": _advisory_lock,
}


def hold_migration_lock(connection: Connection) -> None:
    """Make ``connection``'s transaction (nothing read in it yet on SQLite) wait for, then
    hold off, every other migration until it ends."""
    _LOCKS[connection.dialect.name](connection)


@dataclass(frozen=True)
class Upgrade:
    found: str | None  # the revision the store was at (None: no schema yet)
    now: str  # the revision it is at after the upgrade

    @property
    def created(self) -> bool:
        return self.found is None

    @property
    def changed(self) -> bool:
        return self.found != self.now


def upgrade(engine: Engine) -> Upgrade:
    """Migrate ``engine``'s store to head and say from where (as found under the lock: a store
    another machine migrated meanwhile was found at head)."""
    from alembic.script import ScriptDirectory

    from broadsheet.db.engine import alembic_config

    config = alembic_config(engine)
    command.upgrade(config, "head")
    found = config.attributes.get(FOUND) or ()
    return Upgrade(
        found=", ".join(found) or None,
        now=", ".join(ScriptDirectory.from_config(config).get_heads()),
    )
