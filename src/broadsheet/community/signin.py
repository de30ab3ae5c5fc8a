"""Sign-in attempts: a generous limit per address, growing delays per (username, address).

A hard lock on a username after a few failures from anywhere lets anyone lock its owner out.
Here failures slow down only the address they come from, for that username: after
``SIGN_INS.hits`` failures each further attempt waits twice as long as the one before, from
``FIRST_DELAY`` up to ``SIGN_INS.seconds``. The owner signing in from elsewhere is never held
up. Only failures count; a success clears them, and a day without one forgets them. Every
attempt, right or wrong, also counts toward ``SIGN_INS_PER_ADDRESS``, which bounds a spray over
many usernames from one address.

Failures live in the shared ``rate_limits`` table, so every worker process sees them: one row
per (username, address), whose ``window_start`` is the latest failure and ``hits`` the count.
"""

from __future__ import annotations

import time

from sqlalchemy import Connection, Engine, delete, select

from broadsheet.community import ratelimit
from broadsheet.community.accounts import AccountError, Member, authenticate
from broadsheet.db.bulk import upsert
from broadsheet.db.schema import rate_limits

FIRST_DELAY = 15  # seconds, after the free failures; long enough to stop a script cold
FORGET_AFTER = 86_400  # rate_limits rows older than a day are tidied away anyway
_MAX_NAME = 64  # real usernames are at most 40 characters; keys stay within the column


def delay_after(failures: int) -> int:
    """Seconds the next attempt waits after ``failures`` failures in a row."""
    limit = ratelimit.SIGN_INS
    if failures < limit.hits:
        return 0
    doublings = min(failures - limit.hits, 20)
    return min(limit.seconds, FIRST_DELAY * 2**doublings)


def _key(username: str, address: str) -> str:
    return f"sign_in_failed:{username.strip().lower()[:_MAX_NAME]}:{address}"


def _failures(connection: Connection, key: str, now: float) -> tuple[int, float]:
    """The failures so far and when the latest was (none if it was over a day ago)."""
    row = connection.execute(
        select(rate_limits.c.hits, rate_limits.c.window_start)
        .where(rate_limits.c.key == key)
        .order_by(rate_limits.c.window_start.desc())
        .limit(1)
    ).first()
    if row is None or row.window_start <= now - FORGET_AFTER:
        return 0, 0.0
    return row.hits, float(row.window_start)


def wait_left(engine: Engine, username: str, address: str, now: float | None = None) -> int:
    """Seconds until this address may try this username again (0: now)."""
    now = time.time() if now is None else now
    with engine.connect() as connection:
        failures, latest = _failures(connection, _key(username, address), now)
    return max(0, int(latest + delay_after(failures) - now + 0.999))


def record_failure(engine: Engine, username: str, address: str, now: float | None = None) -> None:
    now = time.time() if now is None else now
    key = _key(username, address)
    with engine.begin() as connection:
        failures, _ = _failures(connection, key, now)
        connection.execute(delete(rate_limits).where(rate_limits.c.key == key))
        statement = upsert(  # a concurrent failure in the same second adds to the count
            connection, rate_limits, ["key", "window_start"], {"hits": rate_limits.c.hits + 1}
        )
        connection.execute(statement.values(key=key, window_start=int(now), hits=failures + 1))


def forget_failures(engine: Engine, username: str, address: str) -> None:
    with engine.begin() as connection:
        connection.execute(delete(rate_limits).where(rate_limits.c.key == _key(username, address)))


def sign_in(
    engine: Engine, username: str, password: str, address: str, now: float | None = None
) -> Member:
    """The member, if the password is right and this address may try now.

    Raises RateLimited (with the wait) before any hashing when the address must wait,
    AccountError for a wrong name or password (counted), HasherBusy when the process is
    hashing all it can (not counted: it says nothing about the password).
    """
    now = time.time() if now is None else now
    wait = wait_left(engine, username, address, now)
    if wait:
        raise ratelimit.RateLimited(ratelimit.SIGN_INS, retry_after=wait)
    with engine.begin() as connection:
        ratelimit.hit(connection, ratelimit.SIGN_INS_PER_ADDRESS, f"ip:{address}", now)
    try:
        member = authenticate(engine, username, password)
    except AccountError:
        record_failure(engine, username, address, now)
        raise
    forget_failures(engine, username, address)
    return member
