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


def test_a_paper_on_several_days_shows_once_on_its_first_day_with_its_organisation(
    store: Engine,
) -> None:
    from broadsheet.papers.record import FeedPlacement, Organisation, Paper
    from broadsheet.papers.repository import upsert_papers

    lab = Organisation("lab", "The Lab", "The Laboratory")
    with store.begin() as connection:
        for day in (date(2024, 1, 11), date(2024, 1, 9)):  # Tuesday and Thursday of one week
            paper = Paper(
                id="2401.00001",
                title_raw="Twice featured",
                abstract_raw="An abstract.",
                source="test",
                published_at=datetime(2024, 1, 8, 12),
                organisation=lab,
                feed=FeedPlacement(day=day, source="test"),
            )
            upsert_papers(connection, [paper])
    with store.connect() as connection:
        page = feed_page(connection, Period.weekly, date(2024, 1, 10), FeedSort.trending)
    assert page.total == 1
    (card,) = page.papers
    assert card["feed_day"] == date(2024, 1, 9)
    assert (card["organisation_slug"], card["organisation_name"]) == ("lab", "The Lab")
