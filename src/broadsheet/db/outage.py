"""Errors that mean the store cannot answer now (worth trying again later), not a bug.

Each engine says it its own way. PostgreSQL: no connection, a connection lost or given up
(``db/timeouts.py``), or an SQLSTATE of connection trouble (class 08), insufficient resources
(53: too many connections, disk full, out of memory), operator intervention (57: a statement
over its time, a shutdown, "starting up") or system errors (58), or a lock not available in
time (55P03). SQLite: another connection's lock held past the busy timeout (BUSY, LOCKED), or a
file that cannot be opened, read or written (CANTOPEN, IOERR, FULL). Either way, all of the
pool's connections in use past its timeout. Everything else (a constraint, a missing table, bad
SQL) is a bug, and stays a 500.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from sqlalchemy import exc

POSTGRES_CLASSES = ("08", "53", "57", "58")
POSTGRES_STATES = {"55P03"}  # lock_not_available
POSTGRES_BUSY = {"53300", "57014", "55P03"}  # too many connections, statement over its time
SQLITE_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
SQLITE_DOWN = {sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL}
# a URL with a password, or a conninfo's password, should a driver ever quote one
_SECRETS = re.compile(r"\b[\w+.-]+://\S+|password\s*=\s*\S+", re.IGNORECASE)
_BACKGROUND = re.compile(r"\s*\(Background on this error at: [^)]*\)")  # SQLAlchemy's link


@dataclass(frozen=True)
class Outage:
    """Why the store cannot answer: ``busy`` (out of connections or time, locked) or down
    (refused, lost, not answering); ``reason`` is one line for the log, without secrets."""

    busy: bool
    reason: str


def outage(error: BaseException) -> Outage | None:
    """The outage ``error`` reports, or None when it is not one."""
    if isinstance(error, exc.TimeoutError):  # the pool's: every connection in use
        return Outage(busy=True, reason=_one_line(error))
    if not isinstance(error, exc.DBAPIError):
        return None
    driver_error = error.orig
    if isinstance(driver_error, sqlite3.Error):
        return _sqlite_outage(driver_error)
    state = getattr(driver_error, "sqlstate", None)  # psycopg's; None: raised by the client
    reason = f"{type(driver_error).__name__}: {_one_line(driver_error)}"
    if error.connection_invalidated or (state is None and isinstance(error, exc.OperationalError)):
        return Outage(busy=False, reason=reason)
    if state and (state.startswith(POSTGRES_CLASSES) or state in POSTGRES_STATES):
        return Outage(busy=state in POSTGRES_BUSY, reason=reason)
    return None


def _sqlite_outage(error: sqlite3.Error) -> Outage | None:
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF  # the primary code of an extended one
    if code not in SQLITE_BUSY | SQLITE_DOWN:
        return None
    return Outage(busy=code in SQLITE_BUSY, reason=f"{type(error).__name__}: {_one_line(error)}")


def _one_line(error: BaseException) -> str:
    lines = _BACKGROUND.sub("", str(error)).strip().splitlines()
    return _SECRETS.sub("[hidden]", lines[0] if lines else type(error).__name__)
