"""Reading a whole store as it was at one moment, while writes go on (``db copy``).

PostgreSQL: one REPEATABLE READ, READ ONLY transaction, whose snapshot is taken at its first
statement and kept for every statement after (vacuum keeps the row versions it may read until
it ends). SQLite: one read transaction, which in WAL mode
sees the store as of its first read while writers append to the log; the log cannot be
checkpointed past that moment until the transaction ends, so it grows meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from sqlalchemy import Connection, Engine


@contextmanager
def _repeatable_read(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        connection.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with connection.begin():
            connection.exec_driver_sql("SELECT 1")  # the snapshot is taken here
            yield connection


@contextmanager
def _read_transaction(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection, connection.begin():
        # the driver opens no transaction for reads of its own: begin one, and read now so the
        # snapshot is this moment's rather than the first table's
        connection.exec_driver_sql("BEGIN")
        connection.exec_driver_sql("SELECT count(*) FROM sqlite_master")
        yield connection


_SNAPSHOTS: dict[str, Callable[[Engine], AbstractContextManager[Connection]]] = {
    "sqlite": _read_transaction,
    "postgresql": _repeatable_read,
}


def snapshot(engine: Engine) -> AbstractContextManager[Connection]:
    """A connection, for reads only, whose every read until the block ends sees the store as it
    was at the block's start."""
    return _SNAPSHOTS[engine.dialect.name](engine)
