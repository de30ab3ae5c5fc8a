"""Text for output: dates as the reference pages write them, highlights as <mark>, XML text."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

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


def _as_utc(value: datetime) -> datetime:
    """Stored times are naive UTC; an aware time is converted."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def full_datetime(value: datetime | None) -> str:
    """``2 Dec 2026, 15:04 UTC``: a moment in full, whatever the year (comments, edits)."""
    if value is None:
        return ""
    return _as_utc(value).strftime("%-d %b %Y, %H:%M UTC")


def iso_utc(value: datetime | None) -> str:
    """``2026-12-02T15:04:05Z``, for a <time datetime>: machines read the zone too."""
    if value is None:
        return ""
    return _as_utc(value).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


# What XML 1.0 cannot hold: control characters but tab and line breaks, surrogates, U+FFFE/F.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """``text`` without the characters an XML document cannot hold (stored text may have any)."""
    return _NOT_XML.sub("", text)


def marked(text: str | None) -> Markup:
    """Escape ``text``, then turn highlight marks into <mark> elements."""
    escaped = str(escape(text or ""))
    return Markup(escaped.replace(MARK_START, "<mark>").replace(MARK_END, "</mark>"))
