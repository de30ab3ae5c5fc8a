"""Explanations of search results: in the API on request, on the search page for admins only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from broadsheet.community.accounts import create_member
from broadsheet.ingest.runner import import_file
from broadsheet.search.embed import load_embedder
from broadsheet.search.indexing import index_papers
from web.conftest import form_token, make_client

PASSWORD = "long enough password"
TOPICS = Path(__file__).parents[1] / "fixtures" / "daily_papers" / "topics.json"


@pytest.fixture
def indexed_client(store: Engine, database_url: str) -> Iterator[TestClient]:
    import_file(store, TOPICS)
    index_papers(store, load_embedder())
    with make_client(database_url) as client:
        yield client


def _sign_in(client: TestClient, username: str) -> None:
    token = form_token(client.get("/signin").text)
    signed_in = client.post(
        "/signin",
        data={"username": username, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert signed_in.status_code == 303


def test_the_api_explains_results_only_when_asked(indexed_client: TestClient) -> None:
    plain = indexed_client.get("/api/papers/search", params={"q": "protein folding"}).json()
    assert plain["results"] and all(r["explain"] is None for r in plain["results"])
    asked = indexed_client.get(
        "/api/papers/search", params={"q": "protein folding", "explain": "true"}
    ).json()
    first = asked["results"][0]
    assert first["paper"]["id"] == "2401.00004"
    assert first["explain"]["fused"] == pytest.approx(first["score"], abs=1e-4)
    assert first["explain"]["passage"] is not None and first["explain"]["rerank"] is not None
    assert first["explain"]["kept_because"].startswith("fused score")
    schema = indexed_client.get("/openapi.json").json()["components"]["schemas"]
    assert "kept_because" in schema["ExplanationOut"]["properties"]
    bad = indexed_client.get("/api/papers/search", params={"q": "x", "explain": "perhaps"})
    assert bad.status_code == 422


def test_the_search_page_explains_to_admins_only(indexed_client: TestClient, store: Engine) -> None:
    create_member(store, "root", PASSWORD, is_admin=True)
    create_member(store, "ada", PASSWORD)
    url = "/search?q=protein+folding&explain=1"
    assert 'class="meta explain"' not in indexed_client.get(url).text  # a visitor
    _sign_in(indexed_client, "ada")
    assert 'class="meta explain"' not in indexed_client.get(url).text  # a member
    indexed_client.cookies.clear()
    _sign_in(indexed_client, "root")
    page = indexed_client.get(url).text
    assert page.count('class="meta explain"') >= 1
    assert "best sentence" in page and "fused score" in page
    assert 'class="meta explain"' not in indexed_client.get("/search?q=protein+folding").text
