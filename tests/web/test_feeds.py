"""Atom feeds parse (feedparser) and carry the day's papers and a search's results."""

from __future__ import annotations

import feedparser
from fastapi.testclient import TestClient


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
