from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broadsheet.papers.dates import parse_datetime, parse_day


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-11-30T10:40:34Z", datetime(2023, 11, 30, 10, 40, 34)),
        ("2023-11-30T10:40:34.000Z", datetime(2023, 11, 30, 10, 40, 34)),
        ("2023-11-30T12:40:34+02:00", datetime(2023, 11, 30, 10, 40, 34)),
        ("2023-11-30", datetime(2023, 11, 30)),
        ("Mon, 2 Apr 2007 19:18:42 GMT", datetime(2007, 4, 2, 19, 18, 42)),
        ("Tue, 24 Jul 2007 20:10:27 +0100", datetime(2007, 7, 24, 19, 10, 27)),
    ],
)
def test_parse_datetime(text: str, expected: datetime) -> None:
    assert parse_datetime(text) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "2023-13-01", "Mon, 2 Foo 2007 19:18:42 GMT"])
def test_bad_dates_raise(text: str) -> None:
    with pytest.raises(ValueError):
        parse_datetime(text)


def test_parse_day() -> None:
    assert parse_day("2023-11-30T23:59:59Z") == date(2023, 11, 30)


@pytest.mark.parametrize(
    "text",
    [
        "9999-12-31T23:59:59-23:59",  # the time zone moves it past the calendar's end
        "0001-01-01T00:00:00+23:59",
        "9999-12-31",
        "0001-01-01",
        "Fri, 31 Dec 9999 23:59:59 -2359",
    ],
)
def test_dates_outside_what_a_paper_carries_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_datetime(text)


@given(st.text(alphabet="0123456789-+:TZ ,GMTMonDecFri", max_size=40) | st.text(max_size=40))
def test_any_text_is_a_date_or_a_value_error(text: str) -> None:
    try:
        parsed = parse_datetime(text)
    except ValueError:
        return
    assert parsed.tzinfo is None and 1000 <= parsed.year <= 2999
