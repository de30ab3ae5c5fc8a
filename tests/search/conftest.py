"""A small store of papers on distinct topics, imported and embedded once per test session."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from broadsheet.db.engine import make_engine, migrate
from broadsheet.ingest.runner import import_file
from broadsheet.search.embed import load_embedder
from broadsheet.search.indexing import index_papers

TOPICS = Path(__file__).parents[1] / "fixtures" / "daily_papers" / "topics.json"


@pytest.fixture(scope="session")
def embedder():
    return load_embedder()


@pytest.fixture(scope="session")
def _embedded_topics(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:
    path = tmp_path_factory.mktemp("topics") / "topics.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    import_file(engine, TOPICS)
    index_papers(engine, embedder)
    engine.dispose()
    return path


@pytest.fixture
def topics_store(_embedded_topics: Path, tmp_path: Path) -> Iterator[Engine]:
    """A private copy of the embedded topic store (tests may change it)."""
    path = tmp_path / "topics.db"
    shutil.copy(_embedded_topics, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def topics_store_for_fuzz(_embedded_topics: Path) -> Iterator[Engine]:
    """The shared topic store, read-only (for property tests that run many examples)."""
    engine = make_engine(f"sqlite:///{_embedded_topics}")
    yield engine
    engine.dispose()
