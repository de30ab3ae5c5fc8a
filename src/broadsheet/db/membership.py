"""``column IN (values)`` with every value in one bound parameter.

An expanding ``IN`` list binds one parameter per value, which costs a fresh statement render
per call and caps the list at the driver's parameter limit. One JSON array (SQLite's
``json_each``) or one array (PostgreSQL's ``= ANY``) does neither.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, any_, bindparam, func, literal_column, select
from sqlalchemy.dialects.postgresql import ARRAY


def _in_json_array(column: ColumnElement, values: list[Any]) -> ColumnElement:
    members = func.json_each(bindparam(None, orjson.dumps(values).decode()))
    return column.in_(select(literal_column("value")).select_from(members))


def _equals_any_of_array(column: ColumnElement, values: list[Any]) -> ColumnElement:
    return column == any_(bindparam(None, values, type_=ARRAY(column.type)))


_MEMBERSHIP: dict[str, Callable[[ColumnElement, list[Any]], ColumnElement]] = {
    "sqlite": _in_json_array,
    "postgresql": _equals_any_of_array,
}


def is_one_of(
    connection: Connection, column: ColumnElement, values: Iterable[Any]
) -> ColumnElement:
    """A condition true where ``column`` equals one of ``values`` (any number of them)."""
    return _MEMBERSHIP[connection.dialect.name](column, list(values))
