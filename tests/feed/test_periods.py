from datetime import date, datetime

import pytest
from sqlalchemy import Engine

from broadsheet.feed.periods import Period, next_window, previous_window, window
from broadsheet.feed.views import feed_page, latest_feed_day
from broadsheet.papers.record import FeedPlacement, Paper
from broadsheet.papers.repository import upsert_papers


def test_windows_hold_the_day_and_neighbours_touch() -> None:
    day = date(2024, 2, 29)  # a Thursday in a leap year
    assert window(Period.daily, day) == window(Period.daily, day)
    week = window(Period.weekly, day)
    assert (week.first, week.last) == (date(2024, 2, 26), date(2024, 3, 3))
    month = window(Period.monthly, day)
    assert (month.first, month.last) == (date(2024, 2, 1), date(2024, 2, 29))
    assert previous_window(month).last == date(2024, 1, 31)
    assert next_window(week).first == date(2024, 3, 4)
    assert window(Period.monthly, date(2023, 12, 31)).last == date(2023, 12, 31)
    assert month.label == "February 2024" and week.label == "Week of February 26, 2024"


@pytest.mark.parametrize("period", list(Period))
@pytest.mark.parametrize("day", [date.min, date(1, 1, 7), date(9999, 12, 27), date.max])
def test_periods_at_the_ends_of_the_calendar_exist(period: Period, day: date) -> None:
    current = window(period, day)
    assert current.first <= day <= current.last and current.label
    before, after = previous_window(current), next_window(current)
    assert before is None if current.first == date.min else before.last < current.first
    assert after is None if current.last == date.max else after.first > current.last


def test_feed_page_of_the_calendars_last_day(store: Engine) -> None:
    with store.begin() as connection:
        far = FeedPlacement(date.max, "test")
        upsert_papers(
            connection,
            [
                Paper(
                    id="2401.00001",
                    title_raw="Far",
                    abstract_raw="Far.",
                    source="test",
                    upvotes=5,
                    feed=far,
                )
            ],
        )
    with store.connect() as connection:
        for period in Period:
            page = feed_page(connection, period, date.max, now=datetime(2024, 1, 1))
            assert [p["id"] for p in page.papers] == ["2401.00001"] and page.papers[0]["score"] > 0
        assert latest_feed_day(connection) is None  # beyond the days the feed shows
