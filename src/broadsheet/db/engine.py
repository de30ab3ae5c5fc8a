"""Engine creation (SQLite tuned for WAL) and schema migration to the newest revision."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url

from broadsheet.config import get_settings
from broadsheet.db.timeouts import Timeouts, limit_server_engine, sqlite_connect_args

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def _json_dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def engine_url(url: str) -> URL:
    """``url`` with its driver named: plain ``postgresql://`` URLs use psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str, timeouts: Timeouts | None = None) -> Engine:
    """An engine for ``url``; SQLite files get WAL, NORMAL sync, foreign keys and a busy timeout.

    ``timeouts`` (``db/timeouts.py``) bound how long its callers wait for the store; without,
    a server connection is given ``db_connect_timeout`` and statements as long as they take.
    """
    is_sqlite = url.startswith("sqlite")
    if timeouts is None:
        timeouts = Timeouts() if is_sqlite else Timeouts(connect=get_settings().db_connect_timeout)
    pool: dict[str, float] = {"pool_timeout": timeouts.pool}
    if not is_sqlite:
        pool["pool_size"] = get_settings().db_pool_size
    elif make_url(url).database in (None, "", ":memory:"):
        pool = {}  # one connection per thread, in memory: no queue to wait in
    engine = create_engine(
        engine_url(url),
        pool_pre_ping=not is_sqlite,  # a server restarted or a proxy's idle cut: reconnect
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        connect_args=sqlite_connect_args(timeouts) if is_sqlite else {},
        **pool,
    )
    if not is_sqlite:
        limit_server_engine(engine, timeouts)
        return engine
    busy_ms = round(timeouts.sqlite_busy * 1000)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA page_size=16384")  # takes effect only on a new file
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.close()

    return engine


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # configparser reads % as interpolation: URL escapes (a socket path's %2F) are doubled
    url = engine.url.render_as_string(hide_password=False).replace("%", "%%")
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema up to the newest revision (a no-op when it is already there)."""
    command.upgrade(alembic_config(engine), "head")


@cache
def open_store(url: str, timeouts: Timeouts | None = None) -> Engine:
    """The migrated engine for ``url`` (under ``timeouts``), created once per process.

    The migration itself runs without a statement limit: one may build an index for minutes.
    """
    if timeouts is None or timeouts.statement is None:
        engine = make_engine(url, timeouts)
        migrate(engine)
        return engine
    open_store(url)
    return make_engine(url, timeouts)


@contextmanager
def foreign_keys_unchecked(connection: Connection) -> Iterator[None]:
    """Skip SQLite's foreign-key lookups on ``connection`` while inside this block.

    For bulk writes that insert the parent rows themselves, under the write lock, where every
    lookup would succeed by construction. Enter it before the transaction begins: SQLite
    ignores the setting inside one.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    driver = connection.connection.driver_connection
    driver.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        driver.execute("PRAGMA foreign_keys=ON")


class CheckpointBusy(RuntimeError):
    """A SQLite store's log could not be emptied into its file: a reader still needs it."""


def checkpoint(engine: Engine) -> None:
    """Move what a SQLite store's write-ahead log holds into the ``.db`` file and empty the log,
    so the file alone is the whole store (to be copied or uploaded by itself). PostgreSQL keeps
    no such log beside a store: nothing to do."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as connection:
        busy, _, _ = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    if busy:
        raise CheckpointBusy(f"{engine.url.database}: a reader held the log; run it again")
