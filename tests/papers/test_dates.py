from __future__ import annotations

from datetime import date, datetime

import pytest

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
