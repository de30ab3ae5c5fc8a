"""What the operations commands tell an admin: no password shown, and what `db upgrade` did."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url
from typer.testing import CliRunner

from broadsheet.cli import app
from broadsheet.config import get_settings
from databases import drop_database, new_database_url, new_postgres_url

PASSWORD = "not-for-the-screen-7f3a"


@pytest.fixture
def run_on(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """Runs the CLI against a given store URL."""

    def run(url: str, *args: str):
        monkeypatch.setenv("BROADSHEET_DATABASE_URL", url)
        monkeypatch.setenv("COLUMNS", "200")
        get_settings.cache_clear()
        return CliRunner().invoke(app, list(args))

    yield run
    get_settings.cache_clear()


@pytest.fixture
def url_with_password() -> Iterator[str]:
    """A PostgreSQL store whose URL carries a password (the test server lets it in)."""
    url = new_postgres_url(migrated=True)
    yield make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)
    drop_database(url)


def test_stats_hides_the_database_password(url_with_password: str, run_on) -> None:
    result = run_on(url_with_password, "stats")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert "***" in result.output and make_url(url_with_password).database in result.output


def test_db_upgrade_hides_the_database_password(url_with_password: str, run_on) -> None:
    result = run_on(url_with_password, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output


def test_db_upgrade_says_it_created_the_schema_then_that_it_is_up_to_date(
    tmp_path: Path, run_on
) -> None:
    url = new_database_url(tmp_path, "new", migrated=False)
    try:
        first = run_on(url, "db", "upgrade")
        assert first.exit_code == 0, first.output
        assert "created the schema" in first.output and "up to date" not in first.output
        again = run_on(url, "db", "upgrade")
        assert again.exit_code == 0, again.output
        assert "up to date" in again.output and "created" not in again.output
    finally:
        drop_database(url)
