"""A long ordered list read in batches by keyset (each batch starts after the last row's sort
key), each batch in its own short connection: a download of a long list holds neither the
whole list in memory nor a connection while the client reads."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Engine, RowMapping, Select, and_, or_

BATCH = 500

Order = Sequence[tuple[ColumnElement[Any], bool]]  # (column, descending), unique together


def _after(order: Order, last: Sequence[Any]) -> ColumnElement[bool]:
    """Rows that come after ``last`` (the sort key of a row) in ``order``."""
    clauses = []
    for i, (column, descending) in enumerate(order):
        beyond = column < last[i] if descending else column > last[i]
        equal = [c == value for (c, _), value in zip(order[:i], last[:i], strict=True)]
        clauses.append(and_(*equal, beyond))
    return or_(*clauses)


def keyset_batches(
    engine: Engine, query: Select[Any], order: Order, size: int = BATCH
) -> Iterator[list[RowMapping]]:
    """The rows of ``query`` in ``order`` (whose columns the query selects, none of them
    NULL), ``size`` at a time."""
    ordered = query.order_by(*(c.desc() if descending else c.asc() for c, descending in order))
    last: list[Any] | None = None
    while True:
        batch = ordered if last is None else ordered.where(_after(order, last))
        with engine.connect() as connection:
            rows = connection.execute(batch.limit(size)).mappings().all()
        if rows:
            yield rows
        if len(rows) < size:
            return
        last = [rows[-1][column] for column, _ in order]
