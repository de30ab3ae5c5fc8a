"""Fast many-row INSERTs: values converted with each column's own bind processor, as
SQLAlchemy's ``insert()`` would, without its per-row parameter bookkeeping, which dominates
bulk imports. SQLite runs one compiled INSERT for every row; PostgreSQL takes rows by COPY."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

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


def _insert_many(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    ignore_conflicts_on: Sequence[str] | None,
) -> None:
    """One compiled INSERT run for every row (SQLite: no round trips, so nothing faster)."""
    dialect = connection.dialect
    compiled = _statement(connection, table, ignore_conflicts_on).compile(
        dialect=dialect, column_keys=list(columns)
    )
    order = list(compiled.positiontup) if compiled.positional else list(compiled.params)
    position = {name: index for index, name in enumerate(columns)}
    params: Sequence[Any] = rows
    if order != list(columns):
        pick = itemgetter(*(position[key] for key in order))
        params = [pick(row) if len(order) > 1 else (pick(row),) for row in rows]
    params = _converted(connection, table, order, params)
    if not compiled.positional:
        params = [dict(zip(order, values, strict=True)) for values in params]
    connection.exec_driver_sql(compiled.string, params)


def _copy(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    ignore_conflicts_on: Sequence[str] | None,
) -> None:
    """PostgreSQL's COPY, many times faster than row-by-row INSERTs; rows that may collide
    with stored keys go through a temporary table and one INSERT … ON CONFLICT DO NOTHING."""
    preparer = connection.dialect.identifier_preparer
    names = ", ".join(preparer.quote(name) for name in columns)
    target = preparer.format_table(table)
    into = target if ignore_conflicts_on is None else preparer.quote(f"bulk_{table.name}")
    driver_error = connection.dialect.loaded_dbapi.Error
    try:
        with connection.connection.driver_connection.cursor() as cursor:
            if ignore_conflicts_on is not None:
                cursor.execute(f"DROP TABLE IF EXISTS {into}")
                cursor.execute(
                    f"CREATE TEMPORARY TABLE {into} ON COMMIT DROP AS"
                    f" SELECT {names} FROM {target} WITH NO DATA"
                )
            with cursor.copy(f"COPY {into} ({names}) FROM STDIN") as copy:
                for values in _converted(connection, table, columns, rows):
                    copy.write_row(values)
            if ignore_conflicts_on is not None:
                keys = ", ".join(preparer.quote(name) for name in ignore_conflicts_on)
                cursor.execute(
                    f"INSERT INTO {target} ({names}) SELECT {names} FROM {into}"
                    f" ON CONFLICT ({keys}) DO NOTHING"
                )
                cursor.execute(f"DROP TABLE {into}")
    except driver_error as error:  # raised as SQLAlchemy would: IntegrityError for a dup key
        raise DBAPIError.instance(f"COPY {into}", None, error, driver_error) from error


def _converted(
    connection: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> Sequence[Sequence[Any]]:
    """Rows with each value converted by its column type's bind processor, as INSERT would."""
    dialect = connection.dialect
    processors = [
        (index, processor)
        for index, key in enumerate(columns)
        if (processor := table.c[key].type.dialect_impl(dialect).bind_processor(dialect))
    ]
    if not processors:
        return rows
    convert = _converter(processors)
    return [convert(values) for values in rows]


# How each engine writes many rows at once; the one place that picks by engine.
_WRITERS: dict[str, Callable[..., None]] = {"sqlite": _insert_many, "postgresql": _copy}


def insert_values(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    ignore_conflicts_on: Sequence[str] | None = None,
) -> None:
    """Insert ``rows``, each a tuple (not a list) of values for ``columns`` in that order."""
    if rows:
        _WRITERS[connection.dialect.name](connection, table, columns, rows, ignore_conflicts_on)


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
