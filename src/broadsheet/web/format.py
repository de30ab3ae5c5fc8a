"""Jinja filters: dates as the reference pages write them, highlights as <mark>."""

from __future__ import annotations

from datetime import date, datetime

from markupsafe import Markup, escape

from broadsheet.search.highlight import MARK_END, MARK_START


def card_date(value: date | datetime | None, today: date | None = None) -> str:
    """``Mon D`` within the current year, ``Mon D, YYYY`` otherwise."""
    if value is None:
        return ""
    today = today or date.today()
    if value.year == today.year:
        return value.strftime("%b %-d")
    return value.strftime("%b %-d, %Y")


def marked(text: str | None) -> Markup:
    """Escape ``text``, then turn highlight marks into <mark> elements."""
    escaped = str(escape(text or ""))
    return Markup(escaped.replace(MARK_START, "<mark>").replace(MARK_END, "</mark>"))
