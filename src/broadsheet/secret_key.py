"""The key that signs session cookies and the links in mails.

``BROADSHEET_SECRET_KEY`` when set. Otherwise a SQLite store keeps a random key in a file
beside it (``<store>.secret``), and any other store (PostgreSQL) keeps it in its
``site_secrets`` table, so every server of one database signs alike.
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, select

from broadsheet.config import Settings
from broadsheet.db.bulk import insert_ignoring_conflicts
from broadsheet.db.engine import open_store
from broadsheet.db.schema import site_secrets

SESSION_KEY = "session"


def _new_key() -> str:
    return secrets.token_urlsafe(48)


def _file_beside_store(database_url: str) -> Path | None:
    """``<store>.secret`` for a SQLite file store; None for every other store."""
    database = database_url.removeprefix("sqlite:///")
    if database_url.startswith("sqlite:///") and database not in ("", ":memory:"):
        return Path(f"{database}.secret")
    return None


def key_file(settings: Settings) -> Path | None:
    """The file the signing key is kept in: None when it is set in the environment or kept in
    the store itself."""
    return None if settings.secret_key else _file_beside_store(settings.database_url)


def _key_in_file(path: Path) -> str:
    """The key in ``path``, written there first (readable by its owner only) if missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f"{path.name}.part-{os.getpid()}")
        descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(_new_key())
        try:
            os.link(scratch, path)  # atomic, and never replaces a key another process made
        except FileExistsError:
            pass
        finally:
            scratch.unlink()
    return path.read_text().strip()


def key_in_store(engine: Engine, name: str = SESSION_KEY) -> str:
    """The key ``name`` kept in the store, made by whichever server asks first.

    The insert skips an existing key, so servers starting at once all read the one that won.
    """
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine.begin() as connection:
        statement = insert_ignoring_conflicts(connection, site_secrets, ["name"])
        connection.execute(statement.values(name=name, value=_new_key(), created_at=now))
        return connection.execute(
            select(site_secrets.c.value).where(site_secrets.c.name == name)
        ).scalar_one()


def secret_key(settings: Settings) -> str:
    """``BROADSHEET_SECRET_KEY``, else the store's own key (made on first use)."""
    if settings.secret_key:
        return settings.secret_key
    path = _file_beside_store(settings.database_url)
    if path is not None:
        return _key_in_file(path)
    return key_in_store(open_store(settings.database_url))
