"""The application factory: pages over a store, the secret key kept beside it, health."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from broadsheet.config import Settings
from broadsheet.ingest.runner import import_file
from broadsheet.web.app import create_app


def test_pages_list_stored_papers_cleaned(store, database_url: str, fixtures: Path) -> None:
    import_file(store, fixtures / "daily_papers" / "good.json")
    client = TestClient(create_app(Settings(database_url=database_url)))
    response = client.get("/", params={"date": "2023-12-01"})
    assert response.status_code == 200
    assert "Zero Bubble Pipeline Parallelism" in response.text
    assert 'aria-label="upvotes">19<' in response.text
    latest = client.get("/").text
    assert "Monday, December 4, 2023" in latest and "hep-th/9901001" in latest
    assert "O(n^2)" in latest and "mathcal" not in latest  # cleaned abstract, not raw LaTeX
    assert 'aria-label="upvotes">142<' in latest and 'aria-label="upvotes"><' in latest  # 0: none
    assert client.get("/healthz").json() == {"status": "ok"}


def test_secret_key_is_made_once_and_kept_beside_the_store(store, database_url: str) -> None:
    create_app(Settings(database_url=database_url))
    key_file = Path(database_url.removeprefix("sqlite:///") + ".secret")
    key = key_file.read_text()
    assert len(key) > 40 and (key_file.stat().st_mode & 0o777) == 0o600
    create_app(Settings(database_url=database_url))
    assert key_file.read_text() == key
