"""Errors in the browser are pages in the site's layout; under /api/ they stay JSON.

The search page's filter form: empty fields mean no filter, wrong ones are explained inline.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from httpx import Response

SEARCH = {"q": "pipeline parallelism", "sort": "relevance"}
EMPTY_FILTERS = {"since": "", "until": "", "category": "", "min_upvotes": ""}
HEADINGS = {404: "<h1>Page not found</h1>", 422: "<h1>Some values could not be read</h1>"}


def assert_error_page(response: Response, status: int) -> str:
    """An HTML page in the layout: status kept, the search box, a link home, one heading."""
    assert response.status_code == status, response.text[:200]
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert html.lstrip().startswith("<!doctype html>")
    assert re.search(r'<form class="search" action="/search" method="get" role="search">', html)
    assert 'name="q"' in html
    assert re.search(r'<a [^>]*href="/"[^>]*>[^<]+</a>', html), "no link back home"
    assert html.count("<h1") == 1
    assert "Content-Security-Policy" in response.headers  # the headers middleware still runs
    return html


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/papers/9999.99999", 404, "No paper '9999.99999' here."),
        ("/nope", 404, "There is no page at /nope."),
        ("/organisations/nobody", 404, "No organisation 'nobody' here."),
        ("/?date=garbage", 422, "date: not a valid date"),
        ("/?date=2024-13-45", 422, "date: not a valid date"),
        ("/?period=week", 422, "period: should be one of daily, weekly or monthly"),
        ("/?page=0", 422, "page: should be at least 1"),
        ("/?page=abc", 422, "page: not a whole number"),
    ],
)
def test_html_routes_answer_errors_as_pages(
    client: TestClient, path: str, status: int, says: str
) -> None:
    html = assert_error_page(client.get(path), status)
    assert says.replace("'", "&#39;") in html
    assert '<a href="/">go back to the daily papers</a>' in html
    assert HEADINGS[status] in html  # plain words, not "Unprocessable Entity"
    assert '"detail"' not in html


def test_a_wrong_method_keeps_its_allow_header(client: TestClient) -> None:
    refused = client.delete("/")
    assert_error_page(refused, 405)
    assert refused.headers["allow"] == "GET"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/papers/9999.99999", 404),
        ("/api/nope", 404),
        ("/api/daily_papers?date=garbage", 422),
        ("/api/papers/search?q=x&sort=bogus", 422),
        ("/api/papers/search?q=x&since=&until=&min_upvotes=", 422),
        ("/api/papers/search?q=x&min_upvotes=-1", 422),
    ],
)
def test_api_errors_stay_json(client: TestClient, path: str, status: int) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert "detail" in response.json()


def test_api_validation_errors_keep_fastapis_shape(client: TestClient) -> None:
    [problem] = client.get("/api/daily_papers?date=garbage").json()["detail"]
    assert problem["loc"] == ["query", "date"]


def test_htmx_requests_get_a_short_fragment(client: TestClient) -> None:
    response = client.get("/papers/9999.99999", headers={"HX-Request": "true"})
    assert response.status_code == 404
    assert response.text == "No paper '9999.99999' here."
    invalid = client.get("/?period=week", headers={"HX-Request": "true"})
    assert invalid.status_code == 422 and "<html" not in invalid.text
    assert invalid.text.startswith("period: should be one of")


def test_search_form_submitted_with_empty_fields_searches(daily_client: TestClient) -> None:
    page = daily_client.get("/search", params={**SEARCH, **EMPTY_FILTERS})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'id="paper-2401.10241"' in page.text
    assert 'role="alert"' not in page.text


def test_search_form_keeps_working_filters(daily_client: TestClient) -> None:
    dated = {**SEARCH, **EMPTY_FILTERS, "since": "2023-11-01", "until": "2023-12-31"}
    page = daily_client.get("/search", params=dated)
    assert page.status_code == 200 and 'id="paper-2401.10241"' in page.text
    assert 'value="2023-11-01"' in page.text and 'value="2023-12-31"' in page.text
    for narrower in [{"min_upvotes": "20"}, {"since": "2023-12-01"}, {"category": "q-bio"}]:
        none = daily_client.get("/search", params={**dated, **narrower})
        assert none.status_code == 200 and 'id="paper-2401.10241"' not in none.text, narrower


@pytest.mark.parametrize(
    ("fields", "says", "kept"),
    [
        ({"since": "garbage"}, "From: not a valid date", 'value="garbage"'),
        ({"since": "2024-02-30"}, "From: not a valid date", 'value="2024-02-30"'),
        ({"until": "0001-01-01"}, "To: should be on or after", 'value="0001-01-01"'),
        (
            {"since": "2024-02-01", "until": "2024-01-01"},
            "To: is before From",
            'value="2024-02-01"',
        ),
        ({"min_upvotes": "-1"}, "Min. votes: should be at least 0", 'value="-1"'),
        ({"min_upvotes": "lots"}, "Min. votes: not a whole number", 'value="lots"'),
        ({"min_upvotes": "9223372036854775807"}, "Min. votes: should be at most", ""),
        ({"sort": "bogus"}, "Sort: should be one of relevance, date or upvotes", ""),
        ({"category": "x" * 65}, "Category: at most 64 characters", ""),
    ],
)
def test_search_form_explains_wrong_values_inline(
    daily_client: TestClient, fields: dict[str, str], says: str, kept: str
) -> None:
    page = daily_client.get("/search", params={**SEARCH, **EMPTY_FILTERS, **fields})
    html = assert_error_page(page, 422)
    assert '<form class="filters" action="/search" method="get"' in html
    assert re.search(r'role="alert"[^>]*>.*' + re.escape(says), html, re.DOTALL), html[-3000:]
    assert kept in html
    assert 'value="pipeline parallelism"' in html  # what was typed stays in the form
    assert 'aria-invalid="true"' in html
    assert 'id="paper-2401.10241"' not in html  # no results under a filter it could not read


def test_search_page_without_a_query_shows_the_form(client: TestClient) -> None:
    page = client.get("/search", params=EMPTY_FILTERS)
    assert page.status_code == 200
    assert '<form class="filters"' in page.text
