from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from broadsheet.community import ratelimit
from broadsheet.db.schema import rate_limits

LIMIT = ratelimit.Limit("tries", hits=3, seconds=60)


def test_allows_the_allowance_then_refuses_until_the_next_window(store: Engine) -> None:
    with store.begin() as connection:
        for _ in range(3):
            ratelimit.hit(connection, LIMIT, "ada", now=1_000_000.0)
        with pytest.raises(ratelimit.RateLimited) as refused:
            ratelimit.hit(connection, LIMIT, "ada", now=1_000_010.0)
        assert 0 < refused.value.retry_after <= 60
        ratelimit.hit(connection, LIMIT, "bob", now=1_000_010.0)  # per actor
        ratelimit.hit(connection, LIMIT, "ada", now=1_000_060.0)  # a new window


def test_check_keeps_refused_attempts_counted(store: Engine) -> None:
    for _ in range(3):
        ratelimit.check(store, LIMIT, "ip:1", "user:ada")
    with pytest.raises(ratelimit.RateLimited, match="Too many tries attempts"):
        ratelimit.check(store, LIMIT, "ip:2", "user:ada")  # the username is spent
    with store.connect() as connection:
        hits = dict(connection.execute(select(rate_limits.c.key, rate_limits.c.hits)).all())
    assert hits == {"tries:ip:1": 3, "tries:user:ada": 4, "tries:ip:2": 1}


def test_old_counters_are_removed(store: Engine) -> None:
    with store.begin() as connection:
        ratelimit.hit(connection, LIMIT, "ada", now=1_000_000.0)
        ratelimit.hit(connection, LIMIT, "ada", now=1_000_000.0 + 2 * 86_400)
        count = connection.execute(select(func.count()).select_from(rate_limits)).scalar_one()
    assert count == 1


def test_a_cool_down_slides_from_its_start_and_can_be_ended(store: Engine) -> None:
    start = 1_000_030.0  # mid-window: a fixed window of 60 s would end 30 s later
    with store.begin() as connection:
        assert ratelimit.start_cool_down(connection, "mail", "to:ada", 60, now=start)
        assert not ratelimit.start_cool_down(connection, "mail", "to:ada", 60, now=start + 59)
        assert ratelimit.start_cool_down(connection, "mail", "to:bob", 60, now=start + 59)
        assert ratelimit.start_cool_down(connection, "mail", "to:ada", 60, now=start + 61)
        ratelimit.end_cool_down(connection, "mail", "to:ada")
        assert ratelimit.start_cool_down(connection, "mail", "to:ada", 60, now=start + 62)
