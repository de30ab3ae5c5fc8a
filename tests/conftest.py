"""Shared fixtures: a migrated SQLite store in a temporary file, the shared data, the CLI."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from broadsheet.config import get_settings
from broadsheet.db.engine import make_engine, migrate
from daily_store import _daily_store, daily_store  # noqa: F401 (fixtures for every test)
from databases import drop_database, new_database_url
from helpers import SHARED_DATA
from smtp_sink import SmtpSink, smtp_sink

FIXTURES = Path(__file__).parent / "fixtures"
# bench/ scripts (the synthetic data generator) are importable by tests; appended, so that
# no bench script ever hides a standard library module
sys.path.append(str(Path(__file__).resolve().parents[1] / "bench"))


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """This test's own store: a SQLite file, or a PostgreSQL database (see databases.py)."""
    url = new_database_url(tmp_path, migrated=True)
    yield url
    drop_database(url)


@pytest.fixture
def store(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def daily_papers_file() -> Path:
    path = SHARED_DATA / "hf-daily-papers" / "daily_papers.json"
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (it sits beside the repository in CI)")
    return path


@pytest.fixture
def scifact_dir() -> Path:
    path = SHARED_DATA / "scifact"
    if not (path / "corpus.jsonl").exists():
        pytest.skip(
            f"shared SciFact data not found at {path} (it sits beside the repository in CI)"
        )
    return path


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """A CLI runner whose commands use this test's store."""
    monkeypatch.setenv("BROADSHEET_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    """A real SMTP server on a free local port; ``smtp.messages`` holds what it received."""
    with smtp_sink() as sink:
        yield sink
