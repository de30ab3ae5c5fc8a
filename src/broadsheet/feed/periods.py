"""The feed's periods: a day, an ISO week (Monday to Sunday) or a calendar month.

Stored days can be anything an import held, up to the calendar's ends (0001-01-01,
9999-12-31), so day arithmetic here saturates at those ends instead of overflowing.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum

# The days the feed shows and a request may name: wide enough for any paper, and far enough
# from the calendar's ends that every period around them, and its neighbours, exists.
FIRST_DAY, LAST_DAY = date(1800, 1, 1), date(2199, 12, 31)


class Period(StrEnum):
    daily = "daily"
    weekly = "weekly"
    monthly = "monthly"


@dataclass(frozen=True, slots=True)
class Window:
    period: Period
    first: date  # inclusive
    last: date  # inclusive

    @property
    def label(self) -> str:
        if self.period == Period.daily:
            return self.first.strftime("%A, %B %-d, %Y")
        if self.period == Period.weekly:
            return f"Week of {self.first.strftime('%B %-d, %Y')}"
        return self.first.strftime("%B %Y")

    def is_over(self, now: datetime) -> bool:
        """Whether the period ended before ``now`` (one that ends with the calendar never does)."""
        day_after = shifted(self.last, 1)
        return day_after is not None and now >= datetime.combine(day_after, time())


def shifted(day: date, days: int) -> date | None:
    """``day`` moved by ``days``, or None when that falls off the calendar."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return None


def window(period: Period, day: date) -> Window:
    """The period of kind ``period`` that holds ``day`` (a last week is cut at 9999-12-31)."""
    if period == Period.daily:
        return Window(period, day, day)
    if period == Period.weekly:
        first = day - timedelta(days=day.weekday())  # 0001-01-01 is a Monday: never overflows
        return Window(period, first, shifted(first, 6) or date.max)
    last_of_month = calendar.monthrange(day.year, day.month)[1]
    return Window(period, day.replace(day=1), day.replace(day=last_of_month))


def previous_window(current: Window) -> Window | None:
    """The period before ``current``; None before the calendar's first day."""
    day = shifted(current.first, -1)
    return None if day is None else window(current.period, day)


def next_window(current: Window) -> Window | None:
    """The period after ``current``; None after the calendar's last day."""
    day = shifted(current.last, 1)
    return None if day is None else window(current.period, day)
