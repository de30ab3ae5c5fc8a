from __future__ import annotations

import itertools

import pytest
from sqlalchemy import Engine

from broadsheet.community import ratelimit, signin
from broadsheet.community.accounts import AccountError, create_member

PASSWORD = "long enough password"
FREE = ratelimit.SIGN_INS.hits
T0 = 1_000_000.0


def fail(store: Engine, address: str = "203.0.113.7", now: float = T0, name: str = "ada") -> None:
    with pytest.raises(AccountError):
        signin.sign_in(store, name, "wrong password", address, now=now)


def test_delays_start_after_the_free_failures_and_double_up_to_a_cap() -> None:
    delays = [signin.delay_after(n) for n in range(FREE + 12)]
    assert delays[:FREE] == [0] * FREE
    growing = delays[FREE:]
    assert growing[0] == signin.FIRST_DELAY
    cap = ratelimit.SIGN_INS.seconds
    assert all(b == min(2 * a, cap) for a, b in itertools.pairwise(growing))
    assert growing[-1] == ratelimit.SIGN_INS.seconds
    assert signin.delay_after(10**9) == ratelimit.SIGN_INS.seconds  # no overflow


def test_failures_slow_down_one_name_from_one_address_only(store: Engine) -> None:
    create_member(store, "ada", PASSWORD)
    create_member(store, "bob", PASSWORD)
    for _ in range(FREE):
        fail(store)
    with pytest.raises(ratelimit.RateLimited) as held:
        signin.sign_in(store, "ada", PASSWORD, "203.0.113.7", now=T0 + 1)
    assert held.value.retry_after == signin.FIRST_DELAY - 1
    assert signin.sign_in(store, "ADA", PASSWORD, "198.51.100.1", now=T0 + 1).username == "ada"
    assert signin.sign_in(store, "bob", PASSWORD, "203.0.113.7", now=T0 + 1).username == "bob"
    # once the delay has passed, the next attempt is heard; a failure doubles the delay
    fail(store, now=T0 + signin.FIRST_DELAY)
    with pytest.raises(ratelimit.RateLimited) as held:
        signin.sign_in(store, "ada", PASSWORD, "203.0.113.7", now=T0 + signin.FIRST_DELAY + 1)
    assert held.value.retry_after == 2 * signin.FIRST_DELAY - 1
    later = T0 + 3 * signin.FIRST_DELAY
    assert signin.sign_in(store, "ada", PASSWORD, "203.0.113.7", now=later).username == "ada"
    fail(store, now=later)  # the success cleared the count: this failure is free again
    signin.sign_in(store, "ada", PASSWORD, "203.0.113.7", now=later)


def test_failures_are_forgotten_a_day_after_the_last(store: Engine) -> None:
    create_member(store, "ada", PASSWORD)
    for _ in range(FREE):
        fail(store)
    last = T0 + signin.FIRST_DELAY
    fail(store, now=last)
    with pytest.raises(ratelimit.RateLimited):
        signin.sign_in(store, "ada", PASSWORD, "203.0.113.7", now=last + 1)
    assert signin.sign_in(store, "ada", PASSWORD, "203.0.113.7", now=last + 86_400)


def test_unknown_names_are_slowed_down_the_same_way(store: Engine) -> None:
    for _ in range(FREE):
        fail(store, name="nobody")
    with pytest.raises(ratelimit.RateLimited):
        signin.sign_in(store, "nobody", PASSWORD, "203.0.113.7", now=T0 + 1)


def test_every_attempt_from_one_address_counts_toward_a_generous_limit(store: Engine) -> None:
    create_member(store, "ada", PASSWORD)
    limit = ratelimit.SIGN_INS_PER_ADDRESS
    assert limit.hits > 3 * FREE  # a shared office address is not refused for a few typos
    for n in range(limit.hits):  # a spray over many names, each failing once
        fail(store, name=f"name{n}", now=T0)
    with pytest.raises(ratelimit.RateLimited):
        signin.sign_in(store, "ada", PASSWORD, "203.0.113.7", now=T0)
    assert signin.sign_in(store, "ada", PASSWORD, "198.51.100.1", now=T0).username == "ada"
