"""Signing in returns to the same page and query; a ▲ clicked signed out is cast after it."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from broadsheet.community.accounts import create_member
from broadsheet.db.schema import votes
from broadsheet.web.auth import safe_next
from web.conftest import form_token
from web.test_community import PASSWORD, arxiv, site  # noqa: F401  (fixtures)

HERE = "/papers/2401.00001"


def _links(page: str, path: str) -> list[dict[str, list[str]]]:
    found = re.findall(rf'href="({re.escape(path)}\?[^"]*)"', page)
    return [parse_qs(urlsplit(html.unescape(href)).query) for href in found]


def _sign_in(client: TestClient, query: dict[str, list[str]], password: str = PASSWORD):
    page = client.get("/signin", params={k: v[0] for k, v in query.items()}).text
    fields = dict(re.findall(r'<input type="hidden" name="(next|then)" value="([^"]*)"', page))
    data = {k: html.unescape(v) for k, v in fields.items()}
    data |= {"username": "ada", "password": password, "csrf_token": form_token(page)}
    return client.post("/signin", data=data, follow_redirects=False)


def _voters(client: TestClient, paper_id: str) -> list[int]:
    with client.app.state.engine.connect() as connection:
        rows = connection.execute(select(votes.c.user_id).where(votes.c.paper_id == paper_id))
        return [row.user_id for row in rows]


def test_sign_in_links_keep_the_path_and_query(site: TestClient) -> None:  # noqa: F811
    create_member(site.app.state.engine, "ada", PASSWORD)
    page = site.get(HERE).text
    assert {"next": [HERE]} in _links(page, "/signin")
    assert {"next": [HERE]} in _links(page, "/signup")
    # the parameters a page reads come back; others (tracking tags) are not echoed
    search = "/search?q=noise&sort=new"
    page = site.get(f"{search}&utm_source=mail").text
    assert {"next": [search]} in _links(page, "/signin") and "utm_source" not in page
    response = _sign_in(site, {"next": [HERE]})
    assert response.status_code == 303 and response.headers["location"] == HERE


def test_a_vote_clicked_signed_out_is_cast_once_after_signing_in(
    site: TestClient,  # noqa: F811
) -> None:
    ada = create_member(site.app.state.engine, "ada", PASSWORD)
    page = site.get(HERE).text
    vote_links = [q for q in _links(page, "/signin") if "then" in q]
    assert vote_links == [{"next": [HERE], "then": ["vote:2401.00001"]}]
    assert "upvote" in site.get("/signin", params={"then": "vote:2401.00001"}).text.lower()
    refused = _sign_in(site, vote_links[0], password="wrong password!")
    assert refused.status_code == 401 and _voters(site, "2401.00001") == []
    response = _sign_in(site, vote_links[0])
    assert response.status_code == 303 and response.headers["location"] == HERE
    assert _voters(site, "2401.00001") == [ada.id]
    site.post("/signout", data={"csrf_token": form_token(site.get("/").text)})
    _sign_in(site, vote_links[0])  # the same link again: still one vote, not withdrawn
    assert _voters(site, "2401.00001") == [ada.id]


@pytest.mark.parametrize("then", ["vote:9999.99999", "vote:", "delete:2401.00001", "x" * 300])
def test_an_unusable_intent_is_ignored_and_sign_in_still_works(
    site: TestClient,  # noqa: F811
    then: str,
) -> None:
    create_member(site.app.state.engine, "ada", PASSWORD)
    response = _sign_in(site, {"next": ["/"], "then": [then]})
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert _voters(site, "2401.00001") == []


def test_an_htmx_vote_while_signed_out_carries_the_page_and_the_vote(
    site: TestClient,  # noqa: F811
) -> None:
    token = form_token(site.get("/signup").text)
    current = "http://testserver/search?q=noise&sort=new"
    response = site.post(
        "/papers/2401.00001/vote",
        headers={"HX-Request": "true", "X-CSRF-Token": token, "HX-Current-URL": current},
    )
    assert response.status_code == 401
    query = parse_qs(urlsplit(response.headers["HX-Redirect"]).query)
    assert query == {"next": ["/search?q=noise&sort=new"], "then": ["vote:2401.00001"]}


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "/\\evil.example/",
        "https://evil.example/?x=1",
        "/\t/evil.example/",
        "/\n/evil.example/",
        "javascript:alert(1)",
    ],
)
def test_next_stays_on_this_site(target: str) -> None:
    assert safe_next(target) == "/"


def test_next_keeps_a_same_site_query() -> None:
    assert safe_next("/search?q=a+b&sort=new#x") == "/search?q=a+b&sort=new#x"
