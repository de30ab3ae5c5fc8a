"""How long a caller waits for the store before giving up, on each engine.

A database server that is down refuses at once; one that is frozen (stopped, hung, cut off
behind a firewall that drops packets) accepts bytes and never answers, and without limits
every request waits for it for good. Web requests therefore carry four limits:

- ``connect``: to open a connection (libpq's ``connect_timeout``, per address tried);
- ``statement``: what one statement may run on the server (PostgreSQL's ``statement_timeout``,
  which the server enforces and reports). A server that sends nothing back at all is given up
  ``ANSWER_MARGIN_S`` later by the client: a watchdog thread shuts the connection's socket
  down. On SQLite, a library in this process with no server to freeze, the same limit is how
  long a statement waits for another connection's lock (the busy timeout);
- a pooled connection's check before reuse gets ``connect`` seconds too: an idle connection's
  server that does not answer that trivial round trip in the time a new connection may take is
  given up, and the pool's other idle connections with it;
- ``pool``: to get a free connection when all of the pool's are busy.

A frozen server thus costs a request at most about ``2 × connect`` (a failed check, then a
failed connection), a query on a live server ``statement``, and a full pool ``pool``; then the
error reaches the web app, which answers 503 (``web/unavailable.py``). The CLI and the worker
keep no statement limit: an import or an index build may run one statement for minutes.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors
from sqlalchemy import Engine, event

from broadsheet.config import Settings

ANSWER_MARGIN_S = 2.0  # past the server's own statement limit, which it reports in time
SQLITE_BUSY_S = 30.0  # SQLite's lock wait where no statement limit is given (CLI, worker)


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait for the store (``statement`` None: as long as a statement takes)."""

    connect: float = 130.0  # psycopg's own default
    statement: float | None = None
    pool: float = 30.0  # SQLAlchemy's own default

    @classmethod
    def for_requests(cls, settings: Settings) -> Timeouts:
        """The limits a web request works under."""
        return cls(
            connect=settings.db_connect_timeout,
            statement=settings.db_statement_timeout or None,
            pool=settings.db_pool_timeout,
        )

    @property
    def sqlite_busy(self) -> float:
        """How long a SQLite statement waits for another connection's lock."""
        return self.statement or SQLITE_BUSY_S


class _Watchdog:
    """One thread that shuts down the socket of each wait still going at its deadline.

    A shut-down socket wakes the waiting thread at once: the driver reads the end of the
    connection and raises, as when a server goes away.
    """

    def __init__(self) -> None:
        self._tokens = itertools.count()
        self._start_afresh()
        os.register_at_fork(after_in_child=self._start_afresh)  # a child has no such thread

    def _start_afresh(self) -> None:
        self._waits: dict[int, tuple[float, int]] = {}  # token: (deadline, socket's fd)
        self._changed = threading.Condition()
        self._wakes_at = math.inf
        self._thread: threading.Thread | None = None

    def watch(self, fileno: int, seconds: float) -> int:
        deadline = time.monotonic() + seconds
        with self._changed:
            token = next(self._tokens)
            self._waits[token] = (deadline, fileno)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="db-watchdog", daemon=True)
                self._thread.start()
            if deadline < self._wakes_at:
                self._changed.notify()
        return token

    def release(self, token: int) -> bool:
        """Stop watching; False when the deadline came first (the socket is shut down)."""
        with self._changed:
            return self._waits.pop(token, None) is not None

    def _run(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                for token, (deadline, fileno) in list(self._waits.items()):
                    if deadline <= now:
                        del self._waits[token]
                        _shut_down(fileno)
                self._wakes_at = min((d for d, _ in self._waits.values()), default=math.inf)
                self._changed.wait(None if self._wakes_at == math.inf else self._wakes_at - now)


def _shut_down(fileno: int) -> None:
    # a copy of the descriptor, closed after: the driver's own stays open, on a dead socket
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fileno)) as sock:
        sock.shutdown(socket.SHUT_RDWR)


_WATCHDOG = _Watchdog()


class AnsweringConnection(psycopg.Connection):
    """A psycopg connection that gives up on a server that sends nothing back in time.

    ``answer_within`` bounds each wait on the socket (a statement, a commit, a fetch of a
    streamed result): past it the socket is shut down, so the connection is lost (the pool
    drops it) and the wait raises ``ConnectionTimeout``. ``None``: no bound.
    """

    answer_within: float | None = None

    def wait(self, gen: Any, *args: Any, **kwargs: Any) -> Any:
        if self.answer_within is None:
            return super().wait(gen, *args, **kwargs)
        token = _WATCHDOG.watch(self.pgconn.socket, self.answer_within)
        try:
            return super().wait(gen, *args, **kwargs)
        except psycopg.OperationalError:
            if not _WATCHDOG.release(token):
                raise errors.ConnectionTimeout(
                    f"the database server did not answer within {self.answer_within:g} s"
                ) from None
            raise
        finally:
            _WATCHDOG.release(token)


def limit_server_engine(engine: Engine, timeouts: Timeouts) -> None:
    """Apply ``timeouts`` to the connections ``engine`` (PostgreSQL, psycopg) opens.

    Values given in the URL's query (``?connect_timeout=…``, ``?options=…``) are kept: the
    statement limit is added to the options.
    """
    answer_within = timeouts.statement + ANSWER_MARGIN_S if timeouts.statement else None

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect, _record, cargs: list[Any], cparams: dict[str, Any]):
        cparams.setdefault("connect_timeout", max(2, round(timeouts.connect)))
        if timeouts.statement:
            limit = f"-c statement_timeout={round(timeouts.statement * 1000)}"
            cparams["options"] = f"{cparams.get('options', '')} {limit}".strip()
        connection = AnsweringConnection.connect(*cargs, **cparams)
        connection.answer_within = answer_within
        return connection

    @event.listens_for(engine, "checkin")
    def _idle(dbapi_connection, _record) -> None:
        if dbapi_connection is not None:  # (None: dropped)
            # its next exchange is the check before reuse: a trivial round trip
            dbapi_connection.answer_within = timeouts.connect

    @event.listens_for(engine, "checkout")
    def _in_use(dbapi_connection, _record, _proxy) -> None:
        dbapi_connection.answer_within = answer_within


def sqlite_connect_args(timeouts: Timeouts) -> dict[str, Any]:
    """The sqlite3 module's arguments for ``timeouts`` (its busy timeout)."""
    return {"timeout": timeouts.sqlite_busy}
