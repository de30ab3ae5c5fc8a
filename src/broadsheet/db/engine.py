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

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def _json_dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def engine_url(url: str) -> URL:
    """``url`` with its driver named: plain ``postgresql://`` URLs use psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL, NORMAL sync, foreign keys and a busy timeout."""
    is_sqlite = url.startswith("sqlite")
    engine = create_engine(
        engine_url(url),
        pool_pre_ping=not is_sqlite,  # a server restarted or a proxy's idle cut: reconnect
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        connect_args={"timeout": 30} if is_sqlite else {},
        **({} if is_sqlite else {"pool_size": get_settings().db_pool_size}),
    )
    if is_sqlite:

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA page_size=16384")  # takes effect only on a new file
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
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
def open_store(url: str) -> Engine:
    """The migrated engine for ``url``, created once per process."""
    engine = make_engine(url)
    migrate(engine)
    return engine


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
