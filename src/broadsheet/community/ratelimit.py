"""Fixed-window rate limits and sliding cool-downs kept in the store, so every worker process
shares them."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, select

from broadsheet.db.bulk import upsert
from broadsheet.db.schema import rate_limits


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``hits`` attempts of ``action`` per ``seconds`` for one actor."""

    action: str
    hits: int
    seconds: int


class RateLimited(Exception):
    def __init__(self, limit: Limit, retry_after: int):
        self.limit, self.retry_after = limit, retry_after
        minutes = max(1, round(retry_after / 60))
        super().__init__(
            f"Too many {limit.action.replace('_', ' ')} attempts: "
            f"try again in {minutes} minute{'s' if minutes != 1 else ''}."
        )


VOTES = Limit("votes", hits=120, seconds=600)
COMMENTS = Limit("comments", hits=10, seconds=600)
SUBMISSIONS = Limit("submissions", hits=20, seconds=3600)
# Failures per (username, address) before delays start; they double up to ``seconds`` (signin.py).
SIGN_INS = Limit("sign_in", hits=10, seconds=900)
SIGN_INS_PER_ADDRESS = Limit("sign_in", hits=60, seconds=900)  # every attempt, any username
SIGN_UPS = Limit("sign_up", hits=5, seconds=3600)  # per address
# Subscription confirmation mails: per recipient (its normalised address), so nobody can flood
# one inbox; per asking member and per client address, so nobody can flood many inboxes.
CONFIRMATION_MAILS_TO_ADDRESS = Limit("confirmation_mail", hits=3, seconds=3600)
CONFIRMATION_MAILS_BY_MEMBER = Limit("confirmation_mail", hits=5, seconds=3600)
CONFIRMATION_MAILS_BY_CLIENT = Limit("confirmation_mail", hits=10, seconds=3600)

_KEEP_SECONDS = 86_400  # counters older than a day are removed as new windows start


def _upsert(connection: Connection):
    statement = upsert(
        connection, rate_limits, ["key", "window_start"], {"hits": rate_limits.c.hits + 1}
    )
    return statement.returning(rate_limits.c.hits)


def hit(connection: Connection, limit: Limit, actor: str, now: float | None = None) -> None:
    """Count one attempt by ``actor``; raise RateLimited once the window's allowance is spent.

    It runs in the caller's transaction: when the action fails or is refused and the
    transaction rolls back, the attempt is not counted.
    """
    now = time.time() if now is None else now
    window_start = int(now // limit.seconds * limit.seconds)
    key = f"{limit.action}:{actor}"
    hits = connection.execute(
        _upsert(connection).values(key=key, window_start=window_start, hits=1)
    ).scalar_one()
    if hits == 1:  # the first hit of a new window tidies expired counters
        connection.execute(
            delete(rate_limits).where(rate_limits.c.window_start < now - _KEEP_SECONDS)
        )
    if hits > limit.hits:
        raise RateLimited(limit, retry_after=int(window_start + limit.seconds - now) + 1)


def forget(connection: Connection, actor: str) -> None:
    """Drop every counter of ``actor`` (e.g. ``member:7`` when that account is deleted)."""
    connection.execute(delete(rate_limits).where(rate_limits.c.key.like(f"%:{actor}")))


def check(engine: Engine, limit: Limit, *actors: str) -> None:
    """Count one attempt for each actor in its own committed transaction (sign-in, sign-up).

    The count is kept even when the attempt is then refused, which is the point for sign-in.
    """
    with engine.begin() as connection:
        errors = []
        for actor in actors:
            try:
                hit(connection, limit, actor)
            except RateLimited as exc:
                errors.append(exc)
    if errors:
        raise max(errors, key=lambda e: e.retry_after)


def start_cool_down(
    connection: Connection, action: str, actor: str, seconds: int, now: float | None = None
) -> bool:
    """Start ``actor``'s cool-down of ``seconds`` (at most a day) for ``action``: False, and
    nothing recorded, while an earlier one still runs.

    Sliding, unlike the windows above: it ends ``seconds`` after it started. It runs in the
    caller's transaction, which must have written first something every caller for ``actor``
    writes (say, ``hit`` on a counter of theirs): that write waits for any other such
    transaction to end, so two of them cannot both find no cool-down and start one.
    """
    now = time.time() if now is None else now
    key = f"{action}:{actor}"
    running = connection.execute(
        select(rate_limits.c.key)
        .where(rate_limits.c.key == key, rate_limits.c.window_start > now - seconds)
        .limit(1)
    ).first()
    if running is not None:
        return False
    connection.execute(_upsert(connection).values(key=key, window_start=int(now), hits=1))
    return True


def end_cool_down(connection: Connection, action: str, actor: str) -> None:
    """Forget ``actor``'s cool-downs for ``action`` (what started them did not happen)."""
    connection.execute(delete(rate_limits).where(rate_limits.c.key == f"{action}:{actor}"))
