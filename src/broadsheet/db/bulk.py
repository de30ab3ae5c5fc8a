"""Fast many-row INSERTs: compile once, convert values with each column's own bind processor,
and hand plain tuples to the driver. Same SQL and type handling as SQLAlchemy's ``insert()``,
without its per-row parameter bookkeeping, which dominates bulk imports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def _statement(connection: Connection, table: Table, ignore_conflicts_on: Sequence[str] | None):
    if ignore_conflicts_on is None:
        return table.insert()
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=list(ignore_conflicts_on))


def bulk_insert(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    ignore_conflicts_on: Sequence[str] | None = None,
) -> None:
    """Insert ``rows`` (all with the same keys); skip key conflicts if ``ignore_conflicts_on``."""
    if not rows:
        return
    dialect = connection.dialect
    keys = list(rows[0])
    compiled = _statement(connection, table, ignore_conflicts_on).compile(
        dialect=dialect, column_keys=keys
    )
    order = list(compiled.positiontup) if compiled.positional else list(compiled.params)
    converted = [
        (index, processor)
        for index, key in enumerate(order)
        if (processor := table.c[key].type.dialect_impl(dialect).bind_processor(dialect))
    ]
    getter = itemgetter(*order)
    params: list[Any] = []
    last: dict[int, tuple[Any, Any]] = {}  # repeated values (a batch timestamp) convert once
    for row in rows:
        values = getter(row) if len(order) > 1 else (getter(row),)
        if converted:
            values = list(values)
            for index, processor in converted:
                value = values[index]
                if value is None:
                    continue
                previous = last.get(index)
                if previous is not None and previous[0] is value:
                    values[index] = previous[1]
                else:
                    values[index] = result = processor(value)
                    last[index] = (value, result)
        params.append(
            tuple(values) if compiled.positional else dict(zip(order, values, strict=True))
        )
    connection.exec_driver_sql(compiled.string, params)
