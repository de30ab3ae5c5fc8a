"""Text for output: dates as the reference pages write them, highlights as <mark>, XML text."""

from __future__ import annotations

import re
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


# What XML 1.0 cannot hold: control characters but tab and line breaks, surrogates, U+FFFE/F.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """``text`` without the characters an XML document cannot hold (stored text may have any)."""
    return _NOT_XML.sub("", text)


def marked(text: str | None) -> Markup:
    """Escape ``text``, then turn highlight marks into <mark> elements."""
    escaped = str(escape(text or ""))
    return Markup(escaped.replace(MARK_START, "<mark>").replace(MARK_END, "</mark>"))
