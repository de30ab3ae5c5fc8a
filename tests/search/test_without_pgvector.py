"""A PostgreSQL store restored by a user who may not create extensions: every table but the
pgvector ones, the migrations at their newest revision. Search says it answers by keywords, and
``index`` says what to do instead of claiming a graph."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from broadsheet.cli import app as cli_app
from broadsheet.config import Settings
from broadsheet.ingest.runner import import_file
from broadsheet.search.hybrid import VECTORS_UNAVAILABLE, Mode, SearchRequest, search_papers
from broadsheet.search.indexing import index_papers
from broadsheet.search.vector_pgvector import drop_dimensions
from broadsheet.search.vectors import vectors_unavailable
from broadsheet.web.app import create_app
from databases import ON_POSTGRES

pytestmark = pytest.mark.skipif(not ON_POSTGRES, reason="pgvector is PostgreSQL's")

TOPICS = Path(__file__).parents[1] / "fixtures" / "daily_papers" / "topics.json"
QUERY = "attention in transformers"


@pytest.fixture
def embedded(store: Engine, embedder) -> Engine:
    import_file(store, TOPICS)
    index_papers(store, embedder, passages=False)
    return store


def restore_without_pgvector(engine: Engine) -> None:
    """What a restore without the right to create extensions leaves: no extension, no
    pgvector tables, the stored bytes and every other table in place."""
    with engine.begin() as connection:
        drop_dimensions(connection)
        connection.execute(text("DROP EXTENSION vector"))


def test_search_reports_keywords_when_pgvector_is_missing(embedded: Engine) -> None:
    before = search_papers(embedded, SearchRequest(QUERY))
    assert before.mode == Mode.hybrid and before.hits
    assert vectors_unavailable(embedded) is None

    restore_without_pgvector(embedded)
    after = search_papers(embedded, SearchRequest(QUERY))
    assert after.mode == Mode.lexical
    assert after.notice == VECTORS_UNAVAILABLE
    assert after.hits and all(hit.dense is None for hit in after.hits)
    problem = vectors_unavailable(embedded)
    assert problem is not None and "CREATE EXTENSION vector" in problem


def test_api_and_page_say_keywords_only(embedded: Engine, database_url: str) -> None:
    restore_without_pgvector(embedded)
    settings = Settings(database_url=database_url, secret_key="test-secret")
    with TestClient(create_app(settings)) as client:
        found = client.get("/api/papers/search", params={"q": QUERY})
        page = client.get("/search", params={"q": QUERY})
    assert found.status_code == 200
    assert found.json()["mode"] == "lexical"
    assert found.json()["notice"] == VECTORS_UNAVAILABLE
    assert page.status_code == 200
    assert "Search by meaning is unavailable" in page.text


def test_index_says_what_to_do_then_fills_pgvector(
    embedded: Engine, cli: CliRunner, database_url: str
) -> None:
    restore_without_pgvector(embedded)
    refused = cli.invoke(cli_app, ["index"])
    assert refused.exit_code == 1
    assert "CREATE EXTENSION vector" in refused.output
    assert "graph" not in refused.output

    with embedded.begin() as connection:  # the superuser's part
        connection.execute(text("CREATE EXTENSION vector"))
    done = cli.invoke(cli_app, ["index"])
    assert done.exit_code == 0, done.output
    with embedded.connect() as connection:
        copied = connection.execute(text("SELECT count(*) FROM paper_embeddings_384")).scalar()
        stored = connection.execute(text("SELECT count(*) FROM paper_vectors")).scalar()
    assert copied == stored > 0
    assert search_papers(embedded, SearchRequest(QUERY)).mode == Mode.hybrid
