from datetime import date, datetime

from broadsheet.feed.trending import GRAVITY, trending_score


def test_votes_raise_and_age_lowers_the_score() -> None:
    now = datetime(2024, 3, 2, 12)
    today, yesterday = date(2024, 3, 2), date(2024, 3, 1)
    assert trending_score(10, today, now) > trending_score(5, today, now)
    assert trending_score(10, today, now) > trending_score(10, yesterday, now)
    assert trending_score(0, today, now) == 0.0
    # documented: at noon, yesterday's paper needs (38 / 14) ** GRAVITY times the votes
    needed = (38 / 14) ** GRAVITY
    assert (
        abs(trending_score(round(10 * needed), yesterday, now) / trending_score(10, today, now) - 1)
        < 0.05
    )
