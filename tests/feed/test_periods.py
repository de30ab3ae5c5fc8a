from datetime import date

from broadsheet.feed.periods import Period, next_window, previous_window, window


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
