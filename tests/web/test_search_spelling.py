"""The search page and the API say when they searched for corrected words, and undo it."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient

TYPOS = "transfomer atention mechansim"
CORRECTED = "transformer attention mechanism"


def _exact_link(page: str) -> str:
    match = re.search(r'Search instead for <a href="([^"]+)">([^<]+)</a>', page)
    assert match, "the page offers no search for the words as typed"
    assert html.unescape(match[2]) == TYPOS
    return html.unescape(match[1])


def test_the_page_shows_results_for_the_corrected_words(daily_client: TestClient) -> None:
    response = daily_client.get("/search", params={"q": TYPOS})
    assert response.status_code == 200
    assert f"Showing results for <b>{CORRECTED}</b>" in response.text
    assert "No close matches" not in response.text
    assert response.text.count('class="card') >= 3
    assert "exact=1" in _exact_link(response.text)


def test_the_link_searches_the_words_as_typed(daily_client: TestClient) -> None:
    link = _exact_link(daily_client.get("/search", params={"q": TYPOS, "sort": "date"}).text)
    assert "sort=date" in link  # the filters are kept
    response = daily_client.get(link)
    assert response.status_code == 200
    assert "Showing results for" not in response.text
    assert "No close matches for" in response.text


def test_a_correctly_spelled_query_is_not_rewritten(daily_client: TestClient) -> None:
    response = daily_client.get("/search", params={"q": CORRECTED})
    assert response.status_code == 200 and "Showing results for" not in response.text


def test_gibberish_still_finds_no_close_matches(daily_client: TestClient) -> None:
    response = daily_client.get("/search", params={"q": "zxqvw plokjh"})
    assert "No close matches for" in response.text and "Showing results for" not in response.text


def test_the_api_names_the_corrected_query(daily_client: TestClient) -> None:
    found = daily_client.get("/api/papers/search", params={"q": TYPOS}).json()
    assert found["corrected_query"] == CORRECTED and found["query"] == TYPOS
    assert found["total"] >= 3 and "attention" in found["results"][0]["paper"]["summary"].lower()
    plain = daily_client.get("/api/papers/search", params={"q": CORRECTED}).json()
    assert plain["corrected_query"] is None and plain["total"] >= 3
    exact = daily_client.get("/api/papers/search", params={"q": TYPOS, "exact": "true"}).json()
    assert exact["corrected_query"] is None and exact["total"] == 0


def test_the_api_schema_documents_the_field(daily_client: TestClient) -> None:
    schema = daily_client.get("/openapi.json").json()
    assert "corrected_query" in schema["components"]["schemas"]["SearchOut"]["properties"]
