"""Copy a whole store to another engine (SQLite to PostgreSQL and back), streaming and resumable.

Tables go over in foreign-key order, each read in primary-key order in batches and written with
conflicts skipped, so a copy that was stopped picks up after the last row the target holds. The
indexes each engine builds for itself (the keyword index, vector indexes) are rebuilt on the
target afterwards, and every table's row count is compared at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, Table, func, select, tuple_

from broadsheet.db.bulk import insert_ignoring_conflicts
from broadsheet.db.engine import foreign_keys_unchecked, open_store
from broadsheet.db.schema import metadata

BATCH_ROWS = 2_000
# Each store's own change counter (page caches compare it only with itself): not copied.
DERIVED_TABLES = frozenset({"store_version"})


class CountMismatch(RuntimeError):
    """After a copy, a table holds fewer rows on the target than on the source."""


@dataclass
class TableCopy:
    name: str
    source_rows: int
    copied: int = 0  # rows written by this run (a resumed run skips what was there)
    target_rows: int = 0


@dataclass
class CopySummary:
    tables: list[TableCopy] = field(default_factory=list)

    @property
    def copied(self) -> int:
        return sum(table.copied for table in self.tables)


Progress = Callable[[str, int, int], None]  # table, rows done, rows in all


def copied_tables() -> list[Table]:
    """The store's tables in an order that puts every parent before its children."""
    return [table for table in metadata.sorted_tables if table.name not in DERIVED_TABLES]


def _count(connection: Connection, table: Table) -> int:
    return connection.execute(select(func.count()).select_from(table)).scalar_one()


def _batches(
    source: Engine, table: Table, after: tuple | None, batch_rows: int
) -> Iterator[list[dict]]:
    """The table's rows in primary-key order, from just after ``after``, a batch at a time."""
    key = list(table.primary_key.columns)
    while True:
        query = select(table).order_by(*key).limit(batch_rows)
        if after is not None:
            query = query.where(tuple_(*key) > tuple_(*after))
        with source.connect() as connection:
            rows = [dict(row._mapping) for row in connection.execute(query)]
        if not rows:
            return
        yield rows
        after = tuple(rows[-1][column.name] for column in key)


def _last_key(connection: Connection, table: Table) -> tuple | None:
    """The greatest primary key the target holds already: a resumed copy starts after it."""
    key = list(table.primary_key.columns)
    row = connection.execute(select(*key).order_by(*(c.desc() for c in key)).limit(1)).first()
    return tuple(row) if row is not None else None


def copy_store(
    source_url: str,
    target_url: str,
    batch_rows: int = BATCH_ROWS,
    progress: Progress | None = None,
) -> CopySummary:
    """Copy every row of ``source_url``'s store into ``target_url``'s (migrated first).

    Raises :class:`CountMismatch` when a table ends with fewer rows on the target than on the
    source; rows the target had already are kept.
    """
    from broadsheet.db.rebuild import rebuild_derived

    source, target = open_store(source_url), open_store(target_url)
    summary = CopySummary()
    for table in copied_tables():
        with source.connect() as connection:
            total = _count(connection, table)
        with target.connect() as connection:
            after = _last_key(connection, table)
        entry = TableCopy(table.name, total)
        summary.tables.append(entry)
        key = [column.name for column in table.primary_key.columns]
        for rows in _batches(source, table, after, batch_rows):
            with (
                target.connect() as connection,
                foreign_keys_unchecked(connection),
                connection.begin(),
            ):
                connection.execute(insert_ignoring_conflicts(connection, table, key), rows)
            entry.copied += len(rows)
            if progress:
                progress(table.name, entry.copied, total)
    with target.begin() as connection:
        rebuild_derived(connection)
    short = []
    with target.connect() as connection:
        for entry, table in zip(summary.tables, copied_tables(), strict=True):
            entry.target_rows = _count(connection, table)
            if entry.target_rows < entry.source_rows:
                short.append(f"{table.name}: {entry.target_rows} of {entry.source_rows}")
    if short:
        raise CountMismatch("rows missing on the target after the copy: " + "; ".join(short))
    return summary
