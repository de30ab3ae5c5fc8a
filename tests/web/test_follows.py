"""Following over HTTP: the buttons on author and organisation pages, and /following."""

from __future__ import annotations

from fastapi.testclient import TestClient

from web.test_community import arxiv as arxiv
from web.test_community import sign_up
from web.test_community import site as site
from web.test_library import post


def test_follow_from_an_author_page_and_read_the_following_page(site: TestClient) -> None:
    page = site.get("/authors/Ada%20Lovelace").text
    assert "Sign in to follow" in page
    assert site.get("/following", follow_redirects=False).status_code in (303, 307)
    sign_up(site, "reader")
    assert 'aria-pressed="false"' in site.get("/authors/Ada%20Lovelace").text
    answer = post(site, "/follow", {"kind": "author", "name": "ada lovelace"}, htmx=True)
    assert answer.status_code == 200 and "Following ✓" in answer.text
    assert "Following ✓" in site.get("/authors/Ada%20Lovelace").text
    following = site.get("/following").text
    assert "Ada Lovelace" in following and "Paper 2401.00001" in following
    assert "people who share a name" in following
    org = post(site, "/follow", {"kind": "organisation", "name": "acme-lab"})
    assert org.status_code == 303
    assert "Following ✓" in site.get("/organisations/acme-lab").text
    assert "Paper hep-th/9901001" in site.get("/following").text
    post(site, "/follow", {"kind": "author", "name": "Ada Lovelace", "followed": "false"})
    post(site, "/follow", {"kind": "organisation", "name": "acme-lab", "followed": "false"})
    assert "You follow nobody yet" in site.get("/following").text


def test_bad_follows_are_refused_in_words(site: TestClient) -> None:
    sign_up(site, "reader")
    missing = post(site, "/follow", {"kind": "author", "name": "Nobody Here"})
    assert missing.status_code == 404 and "No author" in missing.text
    assert post(site, "/follow", {"kind": "planet", "name": "x"}).status_code == 422
    assert post(site, "/follow", {"kind": "author", "name": "x" * 301}).status_code == 422
    assert site.post("/follow", data={"kind": "author", "name": "Ada"}).status_code == 403  # CSRF
