"""What a store derives from its own rows, rebuilt after rows arrive in bulk (``db copy``).

Each engine keeps its own: SQLite its FTS5 index, PostgreSQL its keyword postings, pgvector
columns and the sequences that hand out new ids.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Integer, text

from broadsheet.db.schema import metadata


def _nothing(connection: Connection) -> None:
    """SQLite hands out the next id from the rows themselves."""


def _advance_sequences(connection: Connection) -> None:
    """Point each id sequence past the largest id copied in, so new rows get fresh ids."""
    for table in metadata.sorted_tables:
        key = list(table.primary_key.columns)
        if len(key) != 1 or not isinstance(key[0].type, Integer):
            continue
        sequence = connection.execute(
            text("SELECT pg_get_serial_sequence(:table, :column)"),
            {"table": table.name, "column": key[0].name},
        ).scalar()
        if sequence is None:
            continue
        connection.execute(
            text(
                f"SELECT setval(:sequence, COALESCE((SELECT max({key[0].name}) FROM "
                f"{table.name}), 0) + 1, false)"
            ),
            {"sequence": sequence},
        )


_ID_SEQUENCES: dict[str, Callable[[Connection], None]] = {
    "sqlite": _nothing,
    "postgresql": _advance_sequences,
}


def rebuild_derived(connection: Connection) -> None:
    """Rebuild the keyword index and vector indexes and advance id sequences, in one transaction."""
    from broadsheet.search.keyword_index import for_engine as keyword_index
    from broadsheet.search.vector_index import for_engine as vector_index

    _ID_SEQUENCES[connection.dialect.name](connection)
    keyword_index(connection).rebuild(connection)
    vector_index(connection).rebuild(connection)
