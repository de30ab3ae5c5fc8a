"""Fast many-row INSERTs: compile once, convert values with each column's own bind processor,
and hand plain tuples to the driver. Same SQL and type handling as SQLAlchemy's ``insert()``,
without its per-row parameter bookkeeping, which dominates bulk imports."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

# Each engine's INSERT with an ON CONFLICT clause; the one place that picks by engine.
_INSERTS: dict[str, Callable[[Table], Any]] = {
    "sqlite": sqlite.insert,
    "postgresql": postgresql.insert,
}


def _conflict_insert(connection: Connection, table: Table):
    """This engine's INSERT for ``table``, able to say what to do on a key conflict."""
    return _INSERTS[connection.dialect.name](table)


def insert_ignoring_conflicts(connection: Connection, table: Table, index_elements: Sequence[Any]):
    """An INSERT that skips rows whose key exists, for SQLite and PostgreSQL alike.

    Its row count is not reliable on every driver (psycopg reports -1 for some batches): add
    ``.returning(...)`` and count the rows returned, which are exactly those inserted.
    """
    statement = _conflict_insert(connection, table)
    return statement.on_conflict_do_nothing(index_elements=list(index_elements))


def upsert(
    connection: Connection,
    table: Table,
    index_elements: Sequence[Any],
    set_: Mapping[str, Any],
):
    """An INSERT that, where the key exists, updates that row with ``set_`` instead."""
    statement = _conflict_insert(connection, table)
    return statement.on_conflict_do_update(index_elements=list(index_elements), set_=dict(set_))


def _statement(connection: Connection, table: Table, ignore_conflicts_on: Sequence[str] | None):
    if ignore_conflicts_on is None:
        return table.insert()
    return insert_ignoring_conflicts(connection, table, ignore_conflicts_on)


def _converter(
    processors: list[tuple[int, Callable[[Any], Any]]],
) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """Converts one row's values; a value repeated from the previous row (a batch timestamp)
    is converted once."""
    last: dict[int, tuple[Any, Any]] = {}

    def convert(values: Sequence[Any]) -> tuple[Any, ...]:
        values = list(values)
        for index, processor in processors:
            value = values[index]
            if value is None:
                continue
            previous = last.get(index)
            if previous is not None and previous[0] is value:
                values[index] = previous[1]
            else:
                values[index] = result = processor(value)
                last[index] = (value, result)
        return tuple(values)

    return convert


def insert_values(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    ignore_conflicts_on: Sequence[str] | None = None,
) -> None:
    """Insert ``rows``, each a tuple (not a list) of values for ``columns`` in that order."""
    if not rows:
        return
    dialect = connection.dialect
    compiled = _statement(connection, table, ignore_conflicts_on).compile(
        dialect=dialect, column_keys=list(columns)
    )
    order = list(compiled.positiontup) if compiled.positional else list(compiled.params)
    processors = [
        (index, processor)
        for index, key in enumerate(order)
        if (processor := table.c[key].type.dialect_impl(dialect).bind_processor(dialect))
    ]
    position = {name: index for index, name in enumerate(columns)}
    params: Sequence[Any] = rows
    if order != list(columns):
        pick = itemgetter(*(position[key] for key in order))
        params = [pick(row) if len(order) > 1 else (pick(row),) for row in rows]
    if processors:
        convert = _converter(processors)
        params = [convert(values) for values in params]
    if not compiled.positional:
        params = [dict(zip(order, values, strict=True)) for values in params]
    connection.exec_driver_sql(compiled.string, params)


def bulk_insert(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    ignore_conflicts_on: Sequence[str] | None = None,
) -> None:
    """Insert ``rows`` (all with the same keys); skip key conflicts if ``ignore_conflicts_on``."""
    if not rows:
        return
    keys = list(rows[0])
    getter = itemgetter(*keys)
    values = [getter(row) for row in rows] if len(keys) > 1 else [(row[keys[0]],) for row in rows]
    insert_values(connection, table, keys, values, ignore_conflicts_on)
