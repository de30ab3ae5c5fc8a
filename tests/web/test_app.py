"""The minimal page that lists stored papers (the full web app comes later)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from broadsheet.config import Settings
from broadsheet.ingest.runner import import_file
from broadsheet.web.app import create_app


def test_empty_store_says_how_to_fill_it(database_url: str) -> None:
    client = TestClient(create_app(Settings(database_url=database_url)))
    response = client.get("/")
    assert response.status_code == 200
    assert "broadsheet import" in response.text
    assert "broadsheet harvest arxiv" in response.text


def test_lists_stored_papers(store, database_url: str, fixtures: Path) -> None:
    import_file(store, fixtures / "daily_papers" / "good.json")
    client = TestClient(create_app(Settings(database_url=database_url)))
    response = client.get("/")
    assert response.status_code == 200
    assert "Zero Bubble Pipeline Parallelism" in response.text
    assert "O(n^2)" in response.text  # cleaned abstract, not raw LaTeX
    assert "▲ 142" in response.text
    assert client.get("/healthz").json() == {"status": "ok"}
