"""The feed's views over the real daily-papers file: papers on their dates, with upvotes."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

import orjson
import pytest
from sqlalchemy import Engine

from broadsheet.feed.periods import Period, window
from broadsheet.feed.views import FeedSort, feed_page, latest_feed_day
from broadsheet.ingest.runner import import_file


@pytest.fixture
def daily_store(store: Engine, daily_papers_file) -> Engine:
    import_file(store, daily_papers_file)
    return store


@pytest.fixture
def expected(daily_papers_file) -> dict[date, dict[str, int]]:
    """Upvotes by paper id, for each day of the file."""
    by_day: dict[date, dict[str, int]] = defaultdict(dict)
    for entry in orjson.loads(daily_papers_file.read_bytes()):
        day = datetime.fromisoformat(entry["publishedAt"].replace("Z", "+00:00")).date()
        by_day[day][entry["paper"]["id"]] = int(entry["paper"]["upvotes"])
    return by_day


def test_every_view_shows_the_files_papers_on_their_dates(daily_store, expected) -> None:
    with daily_store.connect() as connection:
        assert latest_feed_day(connection) == max(expected)
        for day in sorted(expected)[:: max(1, len(expected) // 12)]:
            for period in Period:
                current = window(period, day)
                wanted = {
                    pid: votes
                    for d, papers in expected.items()
                    if current.first <= d <= current.last
                    for pid, votes in papers.items()
                }
                page = feed_page(connection, period, day, FeedSort.top, limit=10_000)
                assert page.total == len(wanted)
                assert {p["id"]: p["votes"] for p in page.papers} == wanted


def test_sorts_and_neighbours(daily_store, expected) -> None:
    days = sorted(expected)
    day = days[len(days) // 2]
    with daily_store.connect() as connection:
        top = feed_page(connection, Period.weekly, day, FeedSort.top, limit=1000)
        assert [p["votes"] for p in top.papers] == sorted(
            (p["votes"] for p in top.papers), reverse=True
        )
        new = feed_page(connection, Period.monthly, day, FeedSort.new, limit=1000)
        assert [p["feed_day"] for p in new.papers] == sorted(
            (p["feed_day"] for p in new.papers), reverse=True
        )
        trending = feed_page(connection, Period.weekly, day, FeedSort.trending, limit=1000)
        assert [p["score"] for p in trending.papers] == sorted(
            (p["score"] for p in trending.papers), reverse=True
        )
        daily = feed_page(connection, Period.daily, day)
        assert daily.previous_day == max(d for d in days if d < day)
        assert daily.next_day == min(d for d in days if d > day)
        paged = feed_page(connection, Period.monthly, day, FeedSort.top, limit=5, offset=5)
        assert [p["id"] for p in paged.papers] == [
            p["id"]
            for p in feed_page(connection, Period.monthly, day, FeedSort.top, limit=10).papers
        ][5:]
