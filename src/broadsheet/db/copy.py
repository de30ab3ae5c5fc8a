"""Copy a whole store to another engine (SQLite to PostgreSQL and back), streaming and resumable.

The source is read as one snapshot (``db/snapshot.py``), so a copy of a store that takes votes
meanwhile is the store at one moment: each paper's counter agrees with its vote rows. Tables
go over in foreign-key order, each read in primary-key order in batches and written with
conflicts skipped. The indexes each engine builds for itself (the keyword index, vector
indexes) are rebuilt on the target afterwards, every table's row count is compared with the
snapshot's, and a SQLite target is checkpointed, so its ``.db`` file alone holds the copy.

A target that holds rows already is refused unless the caller says what to do with them:
``replace`` empties it (one transaction) and copies anew; ``resume`` keeps its rows and copies
only those after each table's greatest key, to finish a copy that was stopped (rows it copied
before are not refreshed: when the source changed in between, ``replace`` gives one snapshot).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import Connection, Engine, Table, delete, func, select, tuple_

from broadsheet.db.bulk import insert_ignoring_conflicts
from broadsheet.db.engine import checkpoint, foreign_keys_unchecked, open_store
from broadsheet.db.schema import metadata
from broadsheet.db.snapshot import snapshot
from broadsheet.db.version import bump_version

BATCH_ROWS = 2_000
# Each store's own change counter (page caches compare it only with itself): not copied.
DERIVED_TABLES = frozenset({"store_version"})

Existing = Literal["refuse", "replace", "resume"]  # what to do with a target's rows


class CountMismatch(RuntimeError):
    """After a copy, a table holds fewer rows on the target than on the source."""


class TargetNotEmpty(RuntimeError):
    """The target holds rows already, and the copy was not told what to do with them."""

    def __init__(self, tables: list[str]):
        self.tables = tables
        super().__init__(f"the target holds rows already (in {', '.join(tables)})")


@dataclass
class TableCopy:
    name: str
    source_rows: int
    copied: int = 0  # rows written by this run (a resumed run skips what was there)
    target_rows: int = 0


@dataclass
class CopySummary:
    tables: list[TableCopy] = field(default_factory=list)
    existing: Existing = "refuse"  # as asked; "refuse" means the target was empty
    held: int = 0  # rows the target held before (removed by "replace", kept by "resume")

    @property
    def copied(self) -> int:
        return sum(table.copied for table in self.tables)

    @property
    def removed(self) -> int:
        return self.held if self.existing == "replace" else 0


Progress = Callable[[str, int, int], None]  # table, rows done, rows in all


def copied_tables() -> list[Table]:
    """The store's tables in an order that puts every parent before its children."""
    return [table for table in metadata.sorted_tables if table.name not in DERIVED_TABLES]


def _count(connection: Connection, table: Table) -> int:
    return connection.execute(select(func.count()).select_from(table)).scalar_one()


def _batches(
    source: Connection, table: Table, after: tuple | None, batch_rows: int
) -> Iterator[list[dict]]:
    """The table's rows in primary-key order, from just after ``after``, a batch at a time."""
    key = list(table.primary_key.columns)
    while True:
        query = select(table).order_by(*key).limit(batch_rows)
        if after is not None:
            query = query.where(tuple_(*key) > tuple_(*after))
        rows = [dict(row._mapping) for row in source.execute(query)]
        if not rows:
            return
        yield rows
        after = tuple(rows[-1][column.name] for column in key)


def _last_key(connection: Connection, table: Table) -> tuple | None:
    """The greatest primary key the target holds already: a resumed copy starts after it."""
    key = list(table.primary_key.columns)
    row = connection.execute(select(*key).order_by(*(c.desc() for c in key)).limit(1)).first()
    return tuple(row) if row is not None else None


def _filled_tables(target: Engine) -> list[str]:
    with target.connect() as connection:
        return [
            table.name
            for table in copied_tables()
            if connection.execute(select(1).select_from(table).limit(1)).first() is not None
        ]


def _held_rows(target: Engine) -> int:
    with target.connect() as connection:
        return sum(_count(connection, table) for table in copied_tables())


def _empty(target: Engine) -> None:
    """Delete every copied table's rows in one transaction, children first."""
    with target.connect() as connection, foreign_keys_unchecked(connection), connection.begin():
        for table in reversed(copied_tables()):
            connection.execute(delete(table))


def _prepare_target(target: Engine, existing: Existing, summary: CopySummary) -> None:
    filled = _filled_tables(target)
    if not filled:
        return
    if existing == "refuse":
        raise TargetNotEmpty(filled)
    summary.held = _held_rows(target)
    if existing == "replace":
        _empty(target)


def copy_store(
    source_url: str,
    target_url: str,
    batch_rows: int = BATCH_ROWS,
    progress: Progress | None = None,
    existing: Existing = "refuse",
) -> CopySummary:
    """Copy every row of ``source_url``'s store, as of one moment, into ``target_url``'s
    (migrated first).

    Raises :class:`TargetNotEmpty` when the target holds rows and ``existing`` is "refuse"
    (nothing is changed), and :class:`CountMismatch` when a table ends with fewer rows on the
    target than the source's snapshot had.
    """
    from broadsheet.db.rebuild import rebuild_derived

    source, target = open_store(source_url), open_store(target_url)
    summary = CopySummary(existing=existing)
    _prepare_target(target, existing, summary)
    with snapshot(source) as reader:
        for table in copied_tables():
            total = _count(reader, table)
            with target.connect() as connection:
                after = _last_key(connection, table) if existing == "resume" else None
            entry = TableCopy(table.name, total)
            summary.tables.append(entry)
            key = [column.name for column in table.primary_key.columns]
            for rows in _batches(reader, table, after, batch_rows):
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
        bump_version(connection)  # pages a server cached from the target's old rows retire
    short = []
    with target.connect() as connection:
        for entry, table in zip(summary.tables, copied_tables(), strict=True):
            entry.target_rows = _count(connection, table)
            if entry.target_rows < entry.source_rows:
                short.append(f"{table.name}: {entry.target_rows} of {entry.source_rows}")
    checkpoint(target)
    if short:
        raise CountMismatch("rows missing on the target after the copy: " + "; ".join(short))
    return summary
