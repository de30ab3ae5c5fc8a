"""Atom feeds parse (feedparser) and carry the day's papers and a search's results."""

from __future__ import annotations

import html
import re
from pathlib import Path
from xml.etree import ElementTree

import feedparser
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from broadsheet.config import Settings
from broadsheet.ingest.runner import import_file
from broadsheet.web.app import create_app
from helpers import live_server
from web.test_community import sign_up
from web.test_library import new_collection, site  # noqa: F401 (fixture)

ATOM = "{http://www.w3.org/2005/Atom}"


def parse(client: TestClient, path: str, **params):
    response = client.get(path, params=params)
    assert response.status_code == 200 and response.headers["content-type"].startswith(
        "application/atom+xml"
    )
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.get("bozo_exception")
    return feed


def test_daily_and_search_feeds(daily_client: TestClient) -> None:
    daily = parse(daily_client, "/feed.atom", date="2024-01-10")
    api = daily_client.get("/api/daily_papers", params={"date": "2024-01-10"}).json()
    assert [e.link.rsplit("/", 1)[1] for e in daily.entries] == [e["paper"]["id"] for e in api]
    search = parse(daily_client, "/search.atom", q="pipeline parallelism")
    assert search.entries[0].title == "Zero Bubble Pipeline Parallelism"
    assert search.entries[0].summary


def test_feeds_of_an_empty_store_still_parse(client: TestClient) -> None:
    assert parse(client, "/feed.atom").entries == []
    assert parse(client, "/search.atom", q="").entries == []


TOPICS = Path(__file__).parents[1] / "fixtures" / "daily_papers" / "topics.json"
FEEDS = ("/feed.atom", "/search.atom?q=diffusion")


@pytest.fixture
def topics(store: Engine) -> Engine:
    import_file(store, TOPICS)
    return store


def links(response) -> list[str]:
    """Every link of an Atom document (it must parse as XML)."""
    root = ElementTree.fromstring(response.content)
    return [link.get("href") for link in root.iter(f"{ATOM}link")]


def feed_links(database_url: str, base: str, headers=None, **settings) -> list[str]:
    app = create_app(Settings(database_url=database_url, secret_key="test", **settings))
    client = TestClient(app, base_url=base)
    found = []
    for path in FEEDS:
        response = client.get(path, headers=headers)
        assert response.status_code == 200
        found += links(response)
    assert len(found) > 4  # both feeds' own links, and their entries'
    return found


def test_links_follow_the_address_reached_without_base_url(topics, database_url: str) -> None:
    found = feed_links(database_url, "http://papers.example:8080")
    assert all(link.startswith("http://papers.example:8080/") for link in found), found
    assert "http://papers.example:8080/papers/2401.00003" in found


def test_base_url_when_set_wins_over_the_address_reached(topics, database_url: str) -> None:
    found = feed_links(database_url, "http://other.example", base_url="https://news.example/")
    assert all(link.startswith("https://news.example/") for link in found), found


def test_the_scheme_a_listed_proxy_reports_is_believed(topics, database_url: str) -> None:
    proto = {"X-Forwarded-Proto": "https"}
    trusted = feed_links(database_url, "http://papers.example", proto, forwarded_allow_ips="*")
    assert all(link.startswith("https://papers.example/") for link in trusted), trusted
    ignored = feed_links(database_url, "http://papers.example", proto)
    assert all(link.startswith("http://papers.example/") for link in ignored), ignored


def test_a_forged_host_cannot_add_markup(topics, database_url: str) -> None:
    forged = 'evil.example"><script>alert(1)</script><x a="'
    app = create_app(Settings(database_url=database_url, secret_key="test"))
    with live_server(app) as url:  # over real HTTP: the test client sets Host from its URL
        for path in FEEDS:
            response = httpx.get(url + path, headers={"Host": forged})
            assert response.status_code == 200
            root = ElementTree.fromstring(response.content)  # still one well-formed document
            assert not [e for e in root.iter() if e.tag in ("script", "x")]
            assert "<script" not in response.text
            # not a host name: the links name the server's own address instead
            assert all(link.startswith(url + "/") for link in links(response))


def _self(feed) -> str:
    return next(link.href for link in feed.feed.links if link.rel == "self")


def test_each_search_feed_has_its_own_id_and_a_self_link_with_its_query(
    topics, client: TestClient
) -> None:
    diffusion = parse(client, "/search.atom", q="diffusion", utm_source="mail")
    pipelines = parse(client, "/search.atom", q="pipeline parallelism")
    assert diffusion.feed.id != pipelines.feed.id
    assert _self(diffusion) == diffusion.feed.id == "http://testserver/search.atom?q=diffusion"
    assert _self(pipelines) == "http://testserver/search.atom?q=pipeline+parallelism"
    assert diffusion.feed.link == "http://testserver/search?q=diffusion"  # the page it follows
    daily = parse(client, "/feed.atom", date="2024-01-10")
    assert _self(daily) == daily.feed.id == "http://testserver/feed.atom?date=2024-01-10"
    assert parse(client, "/feed.atom").feed.id == "http://testserver/feed.atom"


def advertised_feeds(page: str) -> list[str]:
    """The feeds a page's head names for feed readers to find."""
    head = page.split("</head>", 1)[0]
    tags = re.findall(r"<link [^>]*type=\"application/atom\+xml\"[^>]*>", head)
    return [html.unescape(re.search(r'href="([^"]*)"', tag).group(1)) for tag in tags]


def test_each_page_advertises_its_own_feed(site: TestClient) -> None:  # noqa: F811
    assert advertised_feeds(site.get("/").text) == ["/feed.atom"]
    assert advertised_feeds(site.get("/search?q=graph").text) == ["/search.atom?q=graph"]
    sign_up(site, "ada")
    for visibility in ("link", "public"):
        collection = new_collection(site, f"Picks {visibility}", visibility)
        page = site.get(f"/library?collection={collection}").text
        shared = re.search(r'href="(/c/[A-Za-z0-9_-]+)"', page).group(1)
        assert advertised_feeds(site.get(shared).text) == [f"{shared}.atom"]
        assert parse(site, f"{shared}.atom").feed.title.startswith(f"Picks {visibility}")
