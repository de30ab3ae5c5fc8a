"""The shared daily papers in a store, a part of them embedded: a fixture for "for you" tests.

The store is made once per session (embedding its papers takes a while); each test gets a
copy of it.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.engine import make_url

from broadsheet.db.engine import make_engine, migrate
from broadsheet.db.schema import papers
from broadsheet.digest.outbox import period_papers
from broadsheet.digest.subscriptions import Frequency
from broadsheet.ingest.runner import import_file
from broadsheet.search.embed import DEFAULT_MODEL, load_embedder
from broadsheet.search.vectors import pending_papers, store_vectors
from databases import drop_database, new_database_url
from helpers import SHARED_DATA

WEEK_DAY = date(2024, 2, 14)  # the digest's week: Feb 12-18, 2024
TOPIC = "diffusion"


def _copy_of(url: str, folder: Path) -> str:
    """A new store with the contents of the store at ``url`` (a file copy, or a database cloned
    from it as a template)."""
    source = make_url(url)
    if source.get_backend_name() == "sqlite":
        shutil.copy(source.database, folder / "daily.db")
        return f"sqlite:///{folder / 'daily.db'}"
    copy = f"{source.database}_{folder.name}"[:63].lower().replace("-", "_")
    admin = create_engine(source.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{copy}" TEMPLATE "{source.database}"')
    finally:
        admin.dispose()
    return source.set(database=copy).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def _daily_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    source = SHARED_DATA / "hf-daily-papers" / "daily_papers.json"
    if not source.exists():
        pytest.skip(f"shared data not found at {source} (it sits beside the repository in CI)")
    url = new_database_url(tmp_path_factory.mktemp("for-you"), "daily", migrated=True)
    engine = make_engine(url)
    migrate(engine)
    import_file(engine, source)
    # embed the week's papers, January's papers on the topic (to upvote) and 150 others
    week = {p["id"] for p in period_papers(engine, Frequency.weekly, WEEK_DAY)}
    with engine.connect() as connection:
        rows = connection.execute(
            select(papers.c.seq, papers.c.id, papers.c.title, papers.c.published_at)
        ).all()
    january = sorted(
        r.id
        for r in rows
        if TOPIC in r.title.lower() and r.published_at.strftime("%Y-%m") == "2024-01"
    )
    others = sorted(r.id for r in rows if r.id not in week)
    wanted_ids = week | set(january) | set(random.Random(3).sample(others, 150))
    wanted = {r.seq for r in rows if r.id in wanted_ids}
    embedder = load_embedder()
    with engine.connect() as reader:
        pending = [p for p in pending_papers(reader, DEFAULT_MODEL) if p.seq in wanted]
    vectors = embedder.encode([p.text for p in pending])
    with engine.begin() as writer:
        store_vectors(writer, DEFAULT_MODEL, pending, vectors)
    engine.dispose()
    yield url
    drop_database(url)


@pytest.fixture
def daily_store(_daily_store: str, tmp_path: Path) -> Iterator[Engine]:
    url = _copy_of(_daily_store, tmp_path)
    engine = make_engine(url)
    yield engine
    engine.dispose()
    drop_database(url)
