import json
from datetime import date, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from broadsheet.config import Settings
from broadsheet.feed.periods import Period, window
from broadsheet.feed.trending import GRAVITY, Trending, trending_score
from broadsheet.feed.views import FeedSort, feed_page
from broadsheet.ingest.runner import import_file
from broadsheet.web.app import create_app

CLOSED = "This period is over: trending ranks by upvotes alone, the same as Top."


def test_votes_raise_and_age_lowers_the_score() -> None:
    now = datetime(2024, 3, 2, 12)
    today, yesterday = date(2024, 3, 2), date(2024, 3, 1)
    assert trending_score(10, today, now) > trending_score(5, today, now)
    assert trending_score(10, today, now) > trending_score(10, yesterday, now)
    assert trending_score(0, today, now) == 0.0
    # documented: at noon, yesterday's paper needs (38 / 14) ** GRAVITY times the votes
    needed = (38 / 14) ** GRAVITY
    assert (
        abs(trending_score(round(10 * needed), yesterday, now) / trending_score(10, today, now) - 1)
        < 0.05
    )


# The week of Monday 2024-03-04: two 88-vote papers early on, a 20-vote one on its last day.
WEEK = [
    ("2403.00001", "2024-03-04", 88),
    ("2403.00002", "2024-03-05", 88),
    ("2403.00003", "2024-03-10", 20),
]


@pytest.fixture
def week_store(store: Engine, tmp_path: Path) -> Engine:
    entries = [
        {
            "paper": {"id": pid, "title": f"Paper {pid}", "summary": "An abstract.",
                      "authors": [{"name": "Ada Lovelace"}], "publishedAt": f"{day}T09:00:00Z",
                      "upvotes": votes},
            "title": f"Paper {pid}",
            "publishedAt": f"{day}T09:00:00Z",
        }
        for pid, day, votes in WEEK
    ]  # fmt: skip
    path = tmp_path / "week.json"
    path.write_text(json.dumps(entries))
    import_file(store, path)
    return store


def ranked(store: Engine, now: datetime) -> list[str]:
    with store.connect() as connection:
        page = feed_page(connection, Period.weekly, date(2024, 3, 6), FeedSort.trending, now=now)
    return [p["id"] for p in page.papers]


def test_a_past_week_ranks_by_votes_newer_first_on_ties(week_store: Engine) -> None:
    after = datetime(2024, 3, 11, 0, 0)  # the moment the week is over
    assert ranked(week_store, after) == ["2403.00002", "2403.00001", "2403.00003"]
    assert ranked(week_store, datetime(2025, 1, 1)) == ranked(week_store, after)


def test_the_running_week_still_favours_newer_papers(week_store: Engine) -> None:
    sunday_noon = datetime(2024, 3, 10, 12)
    assert ranked(week_store, sunday_noon)[0] == "2403.00003"


def test_trending_says_how_it_ranks() -> None:
    week = window(Period.weekly, date(2024, 3, 6))
    assert Trending.of(week, datetime(2024, 3, 10, 23, 59)).explained == (
        "Ranked by upvotes, newer papers weigh more"
    )
    assert Trending.of(week, datetime(2024, 3, 11)).explained == CLOSED
    assert not window(Period.daily, date.max).is_over(datetime(9999, 12, 31, 23))


def test_the_feed_page_says_how_it_ranks(week_store: Engine, database_url: str) -> None:
    client = TestClient(create_app(Settings(database_url=database_url, secret_key="test")))
    page = client.get("/", params={"date": "2024-03-06", "period": "weekly"}).text
    assert f'<p class="meta ranking">{CLOSED}</p>' in page
    assert page.index("Paper 2403.00001") < page.index("Paper 2403.00003")
    top = client.get("/", params={"date": "2024-03-06", "period": "weekly", "sort": "top"}).text
    assert "trending ranks" not in top  # the tab says it
