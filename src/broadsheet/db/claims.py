"""Claiming rows of shared work (an outbox's digests) so that concurrent workers split it.

A claim is a row lock taken inside the claimer's transaction: on PostgreSQL the query gets
``FOR UPDATE SKIP LOCKED``, so a second worker on any machine passes over a row that another
is working on, and the lock ends with that transaction (a crashed worker's rows are free
again at once). SQLite has no row locks and one writer at a time: the query runs as it is.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Select


def _skip_locked(query: Select) -> Select:
    return query.with_for_update(skip_locked=True)


def _as_is(query: Select) -> Select:
    return query


_CLAIMS: dict[str, Callable[[Select], Select]] = {
    "sqlite": _as_is,
    "postgresql": _skip_locked,
}


def claiming(connection: Connection, query: Select) -> Select:
    """``query`` made to lock the rows it returns and skip those another worker holds."""
    return _CLAIMS[connection.dialect.name](query)
