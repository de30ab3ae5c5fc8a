"""The JSON API: the daily-papers shape (it re-imports), papers, search, similar, OpenAPI."""

from __future__ import annotations

import orjson
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from broadsheet.db.engine import make_engine, migrate
from broadsheet.ingest.runner import import_file
from databases import drop_database, new_database_url


def test_daily_papers_has_the_public_shape_and_reimports(
    daily_client: TestClient, tmp_path
) -> None:
    entries = daily_client.get("/api/daily_papers", params={"date": "2024-01-10"}).json()
    assert entries and all(e["publishedAt"].startswith("2024-01-10") for e in entries)
    first = entries[0]
    assert set(first) == {"paper", "title", "publishedAt"}
    assert {"id", "title", "summary", "authors", "publishedAt", "upvotes"} <= set(first["paper"])
    assert first["paper"]["upvotes"] > 0 and first["paper"]["authors"][0]["name"]
    exported = tmp_path / "exported.json"
    exported.write_bytes(orjson.dumps(entries))
    other_url = new_database_url(tmp_path, "other", migrated=True)
    other = make_engine(other_url)
    migrate(other)
    try:
        summary = import_file(other, exported)
    finally:
        other.dispose()
        drop_database(other_url)
    assert summary.added == len(entries) and summary.errors == 0
    assert daily_client.get("/api/daily_papers", params={"date": "1999-01-01"}).json() == []
    assert daily_client.get("/api/daily_papers", params={"date": "soon"}).status_code == 422


def test_paper_search_and_similar(daily_client: TestClient) -> None:
    paper = daily_client.get("/api/papers/2401.10241").json()
    assert paper["title"] == "Zero Bubble Pipeline Parallelism" and paper["links"]["pdf"]
    assert daily_client.get("/api/papers/0000.00000").status_code == 404
    found = daily_client.get("/api/papers/search", params={"q": "pipeline parallelism"}).json()
    assert found["results"][0]["paper"]["id"] == "2401.10241"
    assert found["mode"] == "lexical" and "index" in found["notice"]  # no vectors yet
    assert "<mark>" in (found["results"][0]["highlight"] or "")
    empty = daily_client.get("/api/papers/search", params={"q": ""}).json()
    assert empty["results"] == [] and empty["notice"]
    similar = daily_client.get("/api/papers/2401.10241/similar")
    assert similar.status_code == 200 and similar.json() == []  # nothing embedded yet
    assert daily_client.get("/api/papers/0000.00000/similar").status_code == 404


def test_openapi_schema_is_valid(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    validate(schema)
    assert {"/api/daily_papers", "/api/papers/search", "/api/papers/{paper_id}"} <= set(
        schema["paths"]
    )
