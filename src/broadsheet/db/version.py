"""The store's change counter: bumped with each visible write, read by the page cache.

The counter is the sum of a few shard rows. A write bumps one shard in its own transaction,
so on PostgreSQL concurrent writers rarely wait on the same row lock (one row would make
every vote queue behind an import batch); SQLite has one writer at a time and one row.

Readers sum the shards in one statement, so they see one snapshot: each committed write
raises the sum by one, and a snapshot that sees a sum sees every write counted in it. Read
the version before the content it labels, so content cached under a version is never older
than that version.

Lock order. Writers that share rows take their locks in one order, so that none holds a row
another waits for while waiting for one that other holds (PostgreSQL would end one of them
with a deadlock error after a second's wait, and the other writers queue meanwhile):

1. rows of one member or one comment: rate-limit counters, the member's own votes, a comment
   being edited, hidden or deleted (no bulk writer takes these);
2. the ``papers`` work lock (``db/work_locks.py``), for writers that add papers;
3. ``papers`` rows, in ascending id when a transaction changes several (an import batch);
4. the rows an import writes after its papers (author and category links, keyword postings,
   feed entries);
5. the store version, last: ``bump_version`` is a transaction's last write to shared rows.
   A transaction bumps one shard however often it calls it, and after the bump writes only
   rows of its own (an import's run record), which no other writer waits for.

A transaction that holds a shard thus waits for nothing but its commit, and two that change
the same papers meet on the first paper both change, before either holds the other's.

Before all of these comes the migration lock (``db/migrating.py``): a migration takes it
before it reads or writes anything and holds it to its commit, and no other writer takes it,
so migrations queue behind one another and never inside the order above. On SQLite it is the
store's one write lock, which a migration takes at its start (BEGIN IMMEDIATE) rather than at
its first write. ``db copy`` writes the target's version last too, after rebuilding its indexes.
"""

from __future__ import annotations

import random

from sqlalchemy import Connection, func, select

from broadsheet.db.bulk import upsert
from broadsheet.db.schema import store_version

# Rows ``1..N`` of ``store_version`` per engine: row 1 from the migrations, the rest made by
# their first bump.
SHARDS: dict[str, int] = {"sqlite": 1, "postgresql": 32}
_SHARD_KEY = "broadsheet.version_shard"  # (transaction, shard) in ``Connection.info``


def shard_count(connection: Connection) -> int:
    """How many counter rows this engine's store has."""
    return SHARDS[connection.dialect.name]


def _transaction_shard(connection: Connection) -> int:
    """The shard this transaction bumps: drawn at its first bump, the same for the rest."""
    transaction = connection.get_transaction()
    held = connection.info.get(_SHARD_KEY)
    if held is None or held[0] is not transaction:
        held = (transaction, random.randint(1, shard_count(connection)))
        connection.info[_SHARD_KEY] = held
    return held[1]


def bump_version(connection: Connection) -> None:
    """Mark the store changed, in the caller's transaction, as its last shared write (see the
    lock order above).

    An upsert, so a shard missing from the store (one copied from a SQLite store has row 1
    only) is made by its first write instead of the write going uncounted.
    """
    shard = _transaction_shard(connection)
    statement = upsert(connection, store_version, ["id"], {"version": store_version.c.version + 1})
    connection.execute(statement.values(id=shard, version=1))


def current_version(connection: Connection) -> int:
    total = connection.execute(select(func.sum(store_version.c.version))).scalar_one()
    return int(total or 0)
