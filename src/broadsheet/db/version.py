"""The store's change counter: bumped with each visible write, read by the page cache."""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from broadsheet.db.schema import store_version


def bump_version(connection: Connection) -> None:
    """Mark the store changed, in the caller's transaction."""
    connection.execute(
        update(store_version)
        .where(store_version.c.id == 1)
        .values(version=store_version.c.version + 1)
    )


def current_version(connection: Connection) -> int:
    return connection.execute(
        select(store_version.c.version).where(store_version.c.id == 1)
    ).scalar_one()
