"""The store's change counter: one step per write, and writers that do not queue on one row."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, delete, func, select, text
from sqlalchemy.exc import OperationalError

from broadsheet.db.schema import store_version
from broadsheet.db.version import bump_version, current_version, shard_count
from databases import ON_POSTGRES


def test_writes_spread_over_the_engines_shards_and_no_others(store: Engine) -> None:
    for _ in range(200):
        with store.begin() as connection:
            bump_version(connection)
    with store.connect() as connection:
        ids = set(connection.execute(select(store_version.c.id)).scalars())
        shards = shard_count(connection)
    assert ids <= set(range(1, shards + 1)) and len(ids) >= min(shards, 16)


def test_a_store_with_only_the_first_row_counts_every_write(store: Engine) -> None:
    """A store copied from SQLite has one counter row: bumps must not go uncounted."""
    with store.begin() as connection:
        connection.execute(delete(store_version).where(store_version.c.id > 1))
        before = current_version(connection)
    for _ in range(10):
        with store.begin() as connection:
            bump_version(connection)
    with store.connect() as connection:
        assert current_version(connection) == before + 10


def test_each_committed_bump_raises_the_version_by_one(store: Engine) -> None:
    with store.connect() as connection:
        before = current_version(connection)

    def bump(_: int) -> None:
        with store.begin() as connection:
            bump_version(connection)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(bump, range(40)))
    with store.begin() as connection:
        assert current_version(connection) == before + 40
        bump_version(connection)
        connection.rollback()
    with store.connect() as connection:
        assert current_version(connection) == before + 40  # a rolled back write counts nothing


@pytest.mark.skipif(not ON_POSTGRES, reason="SQLite has one writer at a time by design")
def test_a_writer_does_not_wait_for_another_writers_open_transaction(store: Engine) -> None:
    """An import batch holding its bump until commit must not make votes queue behind it."""
    with store.connect() as slow, store.connect() as quick:
        slow.begin()
        bump_version(slow)  # holds its shard's row lock until the end of the block
        done = 0
        for _ in range(20):
            try:
                with quick.begin():
                    quick.execute(text("SET LOCAL lock_timeout = '2s'"))
                    bump_version(quick)
                done += 1
            except OperationalError:  # landed on the slow writer's shard: waited, gave up
                pass
        slow.rollback()
        with store.connect() as reader:
            shards = reader.execute(select(func.count()).select_from(store_version)).scalar_one()
    assert shards > 1
    assert done >= 15  # each lands on the locked shard with chance 1/32
