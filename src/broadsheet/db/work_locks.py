"""Locks on parts of a job, so processes on several machines split it (``broadsheet index``),
and on a kind of write that must not interleave with itself (adding papers).

On PostgreSQL a part is held with a session advisory lock: it blocks no row (votes on the papers
being embedded go on), another process asking for the same part is told at once that it is
taken, and a process that dies lets go with its connection. SQLite stores serve one machine and
write one transaction at a time: every part is granted.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError


def _job_key(job: str) -> int:
    """A signed 32-bit key for ``job`` (advisory locks take two int4 keys)."""
    key = zlib.crc32(job.encode())
    return key - 2**32 if key >= 2**31 else key


@contextmanager
def _advisory(engine: Engine, job: str, part: int) -> Iterator[bool]:
    keys = {"job": _job_key(job), "part": part}
    with engine.connect() as connection:
        held = connection.execute(
            text("SELECT pg_try_advisory_lock(:job, :part)"), keys
        ).scalar_one()
        connection.commit()
        try:
            yield held
        finally:
            if held:
                # a connection the server has lost let go of its locks with it
                with contextlib.suppress(DBAPIError):
                    connection.execute(text("SELECT pg_advisory_unlock(:job, :part)"), keys)
                    connection.commit()


@contextmanager
def _granted(engine: Engine, job: str, part: int) -> Iterator[bool]:
    yield True


_LOCKS: dict[str, Callable[[Engine, str, int], AbstractContextManager[bool]]] = {
    "sqlite": _granted,
    "postgresql": _advisory,
}


def holding_part(engine: Engine, job: str, part: int) -> AbstractContextManager[bool]:
    """Try to take ``part`` of ``job``; the block gets whether this process holds it."""
    return _LOCKS[engine.dialect.name](engine, job, part)


def _wait_for_advisory(connection: Connection, job: str) -> None:
    connection.execute(text("SELECT pg_advisory_xact_lock(:job)"), {"job": _job_key(job)})


def _take_write_lock(connection: Connection, job: str) -> None:
    """SQLite: take the store's one write lock now, with a write that changes no row, rather
    than at the transaction's first real write (what was read before it could change)."""
    connection.exec_driver_sql("UPDATE store_version SET id = id WHERE 0")


_SERIALISERS: dict[str, Callable[[Connection, str], None]] = {
    "sqlite": _take_write_lock,
    "postgresql": _wait_for_advisory,
}


def one_at_a_time(connection: Connection, job: str) -> None:
    """Make the caller's transaction wait for, and then hold off, others doing ``job`` until it
    ends (readers and other writes go on)."""
    _SERIALISERS[connection.dialect.name](connection, job)
