"""Typing an arXiv id or URL into the search box opens that paper, or says it is not here."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from feed.test_authors import add, hide, seed

SPELLINGS = [
    "2401.00002",
    "arXiv:2401.00002v2",
    "arxiv:2401.00002",
    "https://arxiv.org/abs/2401.00002",
    "https://arxiv.org/abs/2401.00002v3",
    "https://arxiv.org/pdf/2401.00002v1",
    "https://arxiv.org/pdf/2401.00002.pdf",
    "arxiv.org/abs/2401.00002",
    " 2401.00002 ",
]


@pytest.mark.parametrize("query", SPELLINGS)
def test_an_id_in_any_spelling_opens_the_paper(
    client: TestClient, store: Engine, query: str
) -> None:
    seed(store)
    response = client.get("/search", params={"q": query}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/papers/2401.00002"
    assert client.get("/search", params={"q": query}).status_code == 200


def test_an_old_style_id_opens_the_paper(client: TestClient, store: Engine) -> None:
    add(store, "hep-th/9901001", 1, ["Old Timer"])
    response = client.get(
        "/search", params={"q": "https://arxiv.org/abs/hep-th/9901001v2"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/papers/hep-th/9901001"


def test_an_id_not_stored_says_so_and_offers_to_submit_it(
    client: TestClient, store: Engine
) -> None:
    seed(store)
    page = client.get("/search", params={"q": "arXiv:2402.10200v2"}, follow_redirects=False)
    assert page.status_code == 200
    assert "2402.10200 is not in this store" in page.text
    assert 'href="/submit?paper=2402.10200"' in page.text
    hide(store, "2401.00001")  # a hidden paper is not opened for visitors either
    hidden = client.get("/search", params={"q": "2401.00001"}, follow_redirects=False)
    assert hidden.status_code == 200 and "2401.00001 is not in this store" in hidden.text


def test_api_puts_the_typed_paper_first(client: TestClient, store: Engine) -> None:
    seed(store)
    add(store, "2401.00007", 7, ["Someone"], abstract="We cite 2401.00002 and 2401 papers.")
    for query in ["2401.00002", "https://arxiv.org/abs/2401.00002v2"]:
        found = client.get("/api/papers/search", params={"q": query}).json()
        assert found["results"][0]["paper"]["id"] == "2401.00002", query
        by_votes = client.get("/api/papers/search", params={"q": query, "sort": "upvotes"})
        assert by_votes.json()["results"][0]["paper"]["id"] == "2401.00002"
    missing = client.get("/api/papers/search", params={"q": "2402.10200"}).json()
    assert "2402.10200" not in [r["paper"]["id"] for r in missing["results"]]
