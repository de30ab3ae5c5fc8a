"""Dates from the sources, as naive UTC datetimes, within the years a paper can carry."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime

# No paper is dated outside these years; the calendar's own ends (year 1, 9999) overflow as
# soon as anything adds a day or a time zone to them.
YEARS = range(1000, 3000)
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


def _arxiv_version_date(text: str) -> datetime | None:
    """Fast path for arXiv's fixed ``Mon, 2 Apr 2007 19:18:42 GMT``; None if it is not that."""
    parts = text.split()
    if len(parts) != 6 or parts[5] != "GMT" or parts[2] not in _MONTHS:
        return None
    try:
        hour, minute, second = (int(x) for x in parts[4].split(":"))
        return datetime(int(parts[3]), _MONTHS[parts[2]], int(parts[1]), hour, minute, second)
    except ValueError:
        return None


def parse_datetime(value: str) -> datetime:
    """ISO 8601 (``2023-11-30T10:40:34Z``, ``2023-11-30``) or RFC 2822 (arXiv versions).

    Raises ``ValueError`` for anything else, including dates outside ``YEARS``.
    """
    try:
        parsed = _parse(value)
    except OverflowError as exc:  # a time zone that moves the date past the calendar's end
        raise ValueError(f"{value!r} is out of range") from exc
    if parsed.year not in YEARS:
        raise ValueError(f"{value!r} is out of range (years {YEARS[0]} to {YEARS[-1]})")
    return parsed


def _parse(value: str) -> datetime:
    text = value.strip()
    if not text:
        raise ValueError("empty date")
    if text[0].isdigit():
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
    elif (fast := _arxiv_version_date(text)) is not None:
        return fast
    else:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a date") from exc
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def parse_day(value: str) -> date:
    return parse_datetime(value).date()
