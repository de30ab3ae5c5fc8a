"""Migrating a new store warns of nothing: no warning reaches the log of a first start."""

from __future__ import annotations

import warnings
from pathlib import Path

from broadsheet.db.engine import make_engine, migrate
from databases import drop_database, new_database_url


def test_a_new_store_migrates_without_a_warning(tmp_path: Path) -> None:
    url = new_database_url(tmp_path, "quiet", migrated=False)
    engine = make_engine(url)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a SAWarning from reflecting a table, say
            migrate(engine)
    finally:
        engine.dispose()
        drop_database(url)
