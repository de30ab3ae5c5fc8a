"""Submitting while arXiv is out of reach answers quickly, in plain words; ?paper= prefills."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from broadsheet.config import Settings
from broadsheet.web.app import create_app
from fake_arxiv import closed_port_url, fake_arxiv, silent_arxiv
from web.conftest import form_token
from web.test_community import sign_up

# Generous: the submit path promises about ten seconds; the harvest settings alone
# (30 s timeout, five retries with back-off) would take minutes.
ANSWER_WITHIN = 12.0


def _site(database_url: str, arxiv_url: str) -> TestClient:
    settings = Settings(
        database_url=database_url,
        secret_key="test-secret",
        arxiv_api_url=arxiv_url,
        arxiv_api_delay=3.0,
        arxiv_api_retries=5,
        arxiv_api_timeout=30.0,
    )
    return TestClient(create_app(settings))


@pytest.fixture(params=["closed port", "never answers", "busy"])
def unreachable(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "closed port":
        yield closed_port_url()
    elif request.param == "never answers":
        with silent_arxiv() as url:
            yield url
    else:
        with fake_arxiv() as fake:
            fake.fail_with = 503
            yield fake.url


def _notice(page: str) -> str:
    found = re.search(r'<p class="notice error" role="alert">(.*?)</p>', page, re.S)
    assert found, "the page explains the failure"
    return html.unescape(found.group(1))


def test_submit_answers_quickly_in_plain_words_when_arxiv_is_unreachable(
    store: Engine, database_url: str, unreachable: str
) -> None:
    with _site(database_url, unreachable) as site:
        sign_up(site, "ada", "long enough password")
        token = form_token(site.get("/submit").text)
        started = time.monotonic()
        response = site.post("/submit", data={"paper": "2401.01234", "csrf_token": token})
        elapsed = time.monotonic() - started
    assert elapsed < ANSWER_WITHIN
    assert response.status_code in (502, 503, 504)
    notice = _notice(response.text)
    assert "arXiv" in notice and "try again" in notice
    assert "Errno" not in notice and "http" not in notice.lower() and "127.0.0.1" not in notice
    assert 'value="2401.01234"' in response.text  # kept for the next try


def test_submit_page_prefills_the_paper_from_the_query(store: Engine, database_url: str) -> None:
    with _site(database_url, closed_port_url()) as site:
        sign_up(site, "ada", "long enough password")
        page = site.get("/submit", params={"paper": "2402.10200"})
        assert 'value="2402.10200"' in page.text
        odd = site.get("/submit", params={"paper": '"><script>x</script>'})
        assert "<script>x" not in odd.text
        assert site.get("/submit", params={"paper": "x" * 600}).status_code in (200, 422)


def test_submit_form_shows_progress_while_working(store: Engine, database_url: str) -> None:
    with _site(database_url, closed_port_url()) as site:
        sign_up(site, "ada", "long enough password")
        page = site.get("/submit").text
    form = re.search(r"<form[^>]*action=\"/submit\"[^>]*>", page).group(0)
    assert "hx-post" in form and "hx-disabled-elt" in form and "hx-indicator" in form
    assert 'class="spinner htmx-indicator"' in page
