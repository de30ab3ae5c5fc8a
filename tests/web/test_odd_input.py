"""Odd input never ends in a 500: control characters, far dates, huge numbers, wildcards."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime

import feedparser
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from broadsheet.db.schema import papers
from broadsheet.papers.record import FeedPlacement, Paper
from broadsheet.papers.repository import prepare_fresh_row, upsert_papers
from databases import ON_POSTGRES
from web.conftest import make_client

DAY = date(2024, 1, 10)
# Stored as is; PostgreSQL's text cannot hold NUL at all, so only a SQLite store can have one.
CONTROL = "\x01\x02\x03" + ("" if ON_POSTGRES else "\x00") + "\x0b\ufffe"


def store_raw(store: Engine, paper: Paper, **stored: str) -> None:
    """Store ``paper`` with ``stored`` text as is: no cleaning on the way in."""
    row = prepare_fresh_row(paper)
    row.update(stored)
    paper.prepared = row
    with store.begin() as connection:
        upsert_papers(connection, [paper])


@pytest.fixture
def odd_client(store: Engine, database_url: str) -> Iterator[TestClient]:
    store_raw(
        store,
        Paper(
            id="2401.00001",
            title_raw="Gamma rays",
            abstract_raw="x",
            source="test",
            categories=["cs.LG"],
            published_at=datetime(2024, 1, 9),
            upvotes=3,
            feed=FeedPlacement(DAY, "test"),
        ),
        title=f"Gamma{CONTROL} rays",
        abstract=f"Alpha \x02beta\x03 gamma{CONTROL} delta.",
    )
    with make_client(database_url) as client:
        yield client


def parsed_feed(client: TestClient, path: str, **params) -> feedparser.FeedParserDict:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.get("bozo_exception")
    return feed


@pytest.mark.parametrize("query", ["\x01", "\ufffe", "gamma\x00\x1f"])
def test_search_feed_of_a_query_with_characters_xml_cannot_hold(
    odd_client: TestClient, query: str
) -> None:
    feed = parsed_feed(odd_client, "/search.atom", q=query)
    assert "\x01" not in feed.feed.title


def test_stored_control_characters_leave_feeds_valid(odd_client: TestClient) -> None:
    daily = parsed_feed(odd_client, "/feed.atom", date=DAY.isoformat())
    assert [e.title for e in daily.entries] == ["Gamma rays"]
    assert "gamma" in daily.entries[0].summary
    found = parsed_feed(odd_client, "/search.atom", q="gamma")
    assert [e.title for e in found.entries] == ["Gamma rays"]


def test_stored_mark_characters_are_not_highlights(odd_client: TestClient) -> None:
    hit = odd_client.get("/api/papers/search", params={"q": "gamma"}).json()["results"][0]
    assert re.findall(r"<mark>(\w+)</mark>", hit["highlight"]) == ["gamma"]
    assert hit["highlight"].count("<mark>") == hit["highlight"].count("</mark>") == 1
    page = odd_client.get("/search", params={"q": "gamma"}).text
    assert re.findall(r"<mark>(\w+)</mark>", page) == ["Gamma", "gamma"]


@pytest.mark.parametrize(
    "path",
    [
        "/?date=9999-12-31",
        "/?date=9999-12-31&period=weekly",
        "/?date=9999-12-31&period=monthly",
        "/?date=0001-01-01&period=weekly",
        "/api/daily_papers?date=9999-12-31",
        "/api/daily_papers?date=0001-01-01",
        "/feed.atom?date=9999-12-31",
        "/api/papers/search?q=gamma&since=9999-12-31&until=9999-12-31",
        "/search?q=gamma&until=0001-01-01",
        "/api/papers/search?q=gamma&min_upvotes=9223372036854775808",
        "/search?q=gamma&min_upvotes=9223372036854775807",
        "/api/papers/search?q=gamma&page=9223372036854775808",
    ],
)
def test_out_of_range_parameters_are_refused_not_crashed_on(
    odd_client: TestClient, path: str
) -> None:
    assert odd_client.get(path).status_code == 422


@pytest.mark.parametrize("last_day", [date.max, date.min, date(9999, 12, 27)])
def test_a_stored_feed_day_at_the_end_of_the_calendar_breaks_no_reader(
    odd_client: TestClient, store: Engine, last_day: date
) -> None:
    with store.begin() as connection:
        upsert_papers(
            connection,
            [
                Paper(
                    id="2401.00002",
                    title_raw="Far",
                    abstract_raw="Far off.",
                    source="test",
                    feed=FeedPlacement(last_day, "test"),
                )
            ],
        )
    latest = odd_client.get("/api/daily_papers")
    assert latest.status_code == 200
    days = {e["publishedAt"][:10] for e in latest.json()}
    assert days == {DAY.isoformat()}  # a day the feed cannot show is passed over
    for path in ["/", "/feed.atom", "/?period=weekly", "/?period=monthly", f"/?date={DAY}"]:
        assert odd_client.get(path).status_code == 200, path
    for period in ["daily", "weekly", "monthly"]:
        page = odd_client.get("/", params={"date": DAY.isoformat(), "period": period})
        assert page.status_code == 200 and "2401.00001" in page.text


def test_like_wildcards_in_the_category_are_plain_characters(odd_client: TestClient) -> None:
    def total(category: str) -> int:
        params = {"q": "gamma", "category": category}
        return odd_client.get("/api/papers/search", params=params).json()["total"]

    assert total("cs") == total("cs.LG") == 1
    assert total("%") == total("_s") == total("c_") == total("cs.%") == total("cs._G") == 0


def test_hidden_papers_do_not_count_in_the_search_total(
    odd_client: TestClient, store: Engine
) -> None:
    with store.begin() as connection:
        connection.execute(update(papers).values(hidden_at=datetime(2024, 2, 1)))
    found = odd_client.get("/api/papers/search", params={"q": "gamma"}).json()
    assert found["results"] == [] and found["total"] == 0
    assert "0 results" in odd_client.get("/search", params={"q": "gamma"}).text


@pytest.mark.parametrize(
    "path",
    ["/papers/2401%0000001", "/api/papers/2401.00001%00", "/authors/Ann%00", "/organisations/a%00"],
)
def test_a_nul_character_in_an_address_is_refused_plainly(odd_client, path: str) -> None:
    answer = odd_client.get(path)
    assert answer.status_code == 400, answer.text
    assert "NUL character" in answer.text
