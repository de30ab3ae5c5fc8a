"""The feed's periods: a day, an ISO week (Monday to Sunday) or a calendar month."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum


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


def window(period: Period, day: date) -> Window:
    """The period of kind ``period`` that holds ``day``."""
    if period == Period.daily:
        return Window(period, day, day)
    if period == Period.weekly:
        first = day - timedelta(days=day.weekday())
        return Window(period, first, first + timedelta(days=6))
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return Window(period, first, following - timedelta(days=1))


def previous_window(current: Window) -> Window:
    return window(current.period, current.first - timedelta(days=1))


def next_window(current: Window) -> Window:
    return window(current.period, current.last + timedelta(days=1))
