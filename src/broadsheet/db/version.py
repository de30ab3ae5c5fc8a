"""The store's change counter: bumped with each visible write, read by the page cache.

The counter is the sum of a few shard rows. A write bumps one shard in its own transaction,
so on PostgreSQL concurrent writers rarely wait on the same row lock (one row would make
every vote queue behind an import batch); SQLite has one writer at a time and one row.

Readers sum the shards in one statement, so they see one snapshot: each committed write
raises the sum by one, and a snapshot that sees a sum sees every write counted in it. Read
the version before the content it labels, so content cached under a version is never older
than that version.
"""

from __future__ import annotations

import random

from sqlalchemy import Connection, func, select

from broadsheet.db.bulk import upsert
from broadsheet.db.schema import store_version

# Rows ``1..N`` of ``store_version`` per engine: row 1 from the migrations, the rest made by
# their first bump.
SHARDS: dict[str, int] = {"sqlite": 1, "postgresql": 32}


def shard_count(connection: Connection) -> int:
    """How many counter rows this engine's store has."""
    return SHARDS[connection.dialect.name]


def bump_version(connection: Connection) -> None:
    """Mark the store changed, in the caller's transaction.

    An upsert, so a shard missing from the store (one copied from a SQLite store has row 1
    only) is made by its first write instead of the write going uncounted.
    """
    shard = random.randint(1, shard_count(connection))
    statement = upsert(connection, store_version, ["id"], {"version": store_version.c.version + 1})
    connection.execute(statement.values(id=shard, version=1))


def current_version(connection: Connection) -> int:
    total = connection.execute(select(func.sum(store_version.c.version))).scalar_one()
    return int(total or 0)
