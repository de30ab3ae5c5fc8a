"""Sending a period's digests through the outbox: each confirmed subscriber's exactly once.

``send_digests`` first adds one outbox row per confirmed subscriber for the period (an
idempotent insert), then works through the rows still pending. A row becomes ``sent`` in the
same transaction that records the papers it carried, so a crash or a rerun resumes with the
rows left and repeats none; the only window is a crash between the server accepting a mail
and that commit, after which the rerun sends that one digest again with the same Message-ID.

Each row is claimed (``db/claims.py``) for the time of its send, in the transaction that
records the outcome: on PostgreSQL several senders on several machines split the outbox,
each row locked by one of them and skipped by the others. On SQLite run one sender at a
time (``broadsheet worker`` does).

Transient SMTP failures (4xx, connection trouble) are retried with exponential back-off in
the same run and, past ``MAX_ATTEMPTS``, recorded as failed; permanent ones (5xx) are recorded
at once. Each permanent failure counts against the address, and ``PAUSE_AFTER`` of them in a
row pause it (a successful delivery resets the count).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from broadsheet.community.follows import followed, following_feed, why_followed
from broadsheet.config import Settings, get_settings
from broadsheet.db.bulk import insert_ignoring_conflicts
from broadsheet.db.claims import claiming
from broadsheet.db.membership import is_one_of
from broadsheet.db.schema import digest_outbox, digest_sent_papers, subscribers
from broadsheet.digest.compose import (
    Digest,
    build_digest,
    digest_message,
    feed_period,
    period_key,
    period_window,
)
from broadsheet.digest.for_you import Recommender
from broadsheet.digest.mailer import DeliveryError, Mailer
from broadsheet.digest.subscriptions import Frequency, Status, Subscriber, subscriber_from_row
from broadsheet.feed.periods import Window
from broadsheet.feed.views import FeedSort, feed_page
from broadsheet.search.filters import SearchFilters
from broadsheet.search.hybrid import SearchRequest, search_papers

MAX_ATTEMPTS = 5
PAUSE_AFTER = 3
BACKOFF_BASE = 2.0
BACKOFF_CAP = 300.0
TOPIC_MATCHES = 20
FOR_YOU = 5
RECENT_DAYS = 7


@dataclass(slots=True)
class DeliverySummary:
    period_key: str
    queued: int = 0  # outbox rows added by this run
    sent: int = 0
    empty: int = 0  # nothing new to send
    retried: int = 0
    failed: int = 0
    skipped: int = 0  # unsubscribed or paused since the row was queued
    taken: int = 0  # handled by another sender meanwhile


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def backoff(attempt: int) -> float:
    return min(BACKOFF_BASE * 2 ** max(attempt - 1, 0), BACKOFF_CAP)


def enqueue(engine: Engine, frequency: Frequency, key: str) -> int:
    """One pending row per confirmed subscriber of this frequency (rows already there stay)."""
    now = _now()
    with engine.begin() as connection:
        ids = (
            connection.execute(
                select(subscribers.c.id).where(
                    subscribers.c.status == Status.confirmed, subscribers.c.frequency == frequency
                )
            )
            .scalars()
            .all()
        )
        rows = [
            {"subscriber_id": i, "period_key": key, "status": "pending", "attempts": 0,
             "next_attempt_at": now, "created_at": now}
            for i in ids
        ]  # fmt: skip
        if not rows:
            return 0
        statement = insert_ignoring_conflicts(
            connection, digest_outbox, ["subscriber_id", "period_key"]
        ).returning(digest_outbox.c.id)
        return len(connection.execute(statement, rows).all())  # rows returned: those inserted


def period_papers(engine: Engine, frequency: Frequency, day: date) -> list[dict[str, Any]]:
    """Every paper on the period's feed, trending first."""
    with engine.connect() as connection:
        return feed_page(
            connection, feed_period(frequency), day, FeedSort.trending, limit=100_000
        ).papers


class ForYou:
    """Members' "for you" picks among the period's papers (the model is built on first use)."""

    def __init__(self, engine: Engine, model: str, candidates: list[dict[str, Any]]):
        self.engine, self.model = engine, model
        self.by_id = {p["id"]: p for p in candidates}
        self._recommender: Recommender | None = None
        self._connection = None

    def papers(self, member_id: int) -> tuple[list[dict[str, Any]], list[str]]:
        if self._recommender is None:
            self._connection = self.engine.connect()
            self._recommender = Recommender(self._connection, self.model, list(self.by_id))
        picks = self._recommender.picks(member_id, limit=FOR_YOU * 3)
        return (
            [self.by_id[p.paper_id] for p in picks],
            [p.reason for p in picks],
        )

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


def followed_papers(
    connection: Connection, member_id: int | None, current: Window
) -> tuple[list[dict[str, Any]], list[str]]:
    """New papers by the authors and organisations the member follows, with whom each is by:
    published in the period or the week before it, as topic matches are."""
    if member_id is None:
        return [], []
    since = datetime.combine(current.first - timedelta(days=RECENT_DAYS), datetime.min.time())
    before = datetime.combine(current.last + timedelta(days=1), datetime.min.time())
    found = following_feed(connection, member_id, limit=50, since=since, before=before)
    who = followed(connection, member_id)
    return found, [why_followed(paper, who) for paper in found]


def topic_search(engine: Engine) -> Callable[[str, Window], list[dict[str, Any]]]:
    """Recent papers matching a saved search, each query run once per send.

    Recent: published in the period or the week before it (papers reach the feed a few days
    after they appear); papers sent before are dropped later, so none repeats.
    """
    found: dict[tuple[str, date, date], list[dict[str, Any]]] = {}

    def search(topic: str, current: Window) -> list[dict[str, Any]]:
        key = (topic.lower(), current.first, current.last)
        if key not in found:
            since = current.first - timedelta(days=RECENT_DAYS)
            filters = SearchFilters(since=since, until=current.last)
            results = search_papers(engine, SearchRequest(topic, filters, limit=TOPIC_MATCHES))
            found[key] = [hit.paper for hit in results.hits]
        return found[key]

    return search


def _due(engine: Engine, key: str, now: datetime) -> list[Any]:
    with engine.connect() as connection:
        return connection.execute(
            select(
                digest_outbox.c.id,
                digest_outbox.c.subscriber_id,
                digest_outbox.c.attempts,
                subscribers.c.email,
                subscribers.c.status.label("subscriber_status"),
                subscribers.c.frequency,
                subscribers.c.topics,
                subscribers.c.failure_count,
                subscribers.c.user_id,
            )
            .join(subscribers, subscribers.c.id == digest_outbox.c.subscriber_id)
            .where(
                digest_outbox.c.period_key == key,
                digest_outbox.c.status == "pending",
                digest_outbox.c.next_attempt_at <= now,
            )
            .order_by(digest_outbox.c.id)
        ).all()


def _sent_before(engine: Engine, subscriber_ids: list[int]) -> dict[int, set[str]]:
    """The papers each of these subscribers was sent before (read once per send)."""
    sent: dict[int, set[str]] = {i: set() for i in subscriber_ids}
    with engine.connect() as connection:
        rows = connection.execute(
            select(digest_sent_papers.c.subscriber_id, digest_sent_papers.c.paper_id).where(
                is_one_of(connection, digest_sent_papers.c.subscriber_id, subscriber_ids)
            )
        )
        for subscriber_id, paper_id in rows:
            sent[subscriber_id].add(paper_id)
    return sent


@contextmanager
def _claimed(engine: Engine, row: Any) -> Iterator[Connection | None]:
    """A transaction holding the claim on ``row``; None when another sender has it or has
    handled it since ``row`` was read (its status or attempts changed)."""
    with engine.begin() as connection:
        query = select(digest_outbox.c.id).where(
            digest_outbox.c.id == row.id,
            digest_outbox.c.status == "pending",
            digest_outbox.c.attempts == row.attempts,
        )
        yield connection if connection.execute(claiming(connection, query)).first() else None


def _finish(
    connection: Connection,
    outbox_id: int,
    status: str,
    digest: Digest | None = None,
    reset_failures: bool = False,
) -> None:
    """Mark a row done; a sent digest's papers are recorded in the same transaction."""
    connection.execute(
        update(digest_outbox)
        .where(digest_outbox.c.id == outbox_id)
        .values(status=status, sent_at=_now() if status == "sent" else None)
    )
    if digest is not None:
        subscriber_id = digest.subscriber.id
        statement = insert_ignoring_conflicts(
            connection, digest_sent_papers, ["subscriber_id", "paper_id"]
        )
        connection.execute(
            statement,
            [
                {"subscriber_id": subscriber_id, "paper_id": p, "period_key": digest.period_key}
                for p in digest.paper_ids
            ],
        )
        if reset_failures:
            connection.execute(
                update(subscribers).where(subscribers.c.id == subscriber_id).values(failure_count=0)
            )


def _record_failure(
    connection: Connection, row: Any, error: DeliveryError, final: bool, retry_in: float
) -> None:
    connection.execute(
        update(digest_outbox)
        .where(digest_outbox.c.id == row.id)
        .values(
            status="failed" if final else "pending",
            attempts=digest_outbox.c.attempts + 1,
            last_error=str(error)[:1000],
            next_attempt_at=_now() + timedelta(seconds=retry_in),
        )
    )
    if final:
        failures = row.failure_count + 1
        values: dict[str, Any] = {"failure_count": failures}
        if failures >= PAUSE_AFTER:
            values["status"] = Status.paused
        connection.execute(
            update(subscribers).where(subscribers.c.id == row.subscriber_id).values(values)
        )


def send_digests(
    engine: Engine,
    settings: Settings,
    secret: str,
    frequency: Frequency,
    day: date,
    *,
    mailer: Mailer | None = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[int, int], None] | None = None,
) -> DeliverySummary:
    """Queue and deliver the ``frequency`` digest of the period holding ``day``."""
    key = period_key(frequency, day)
    summary = DeliverySummary(key, queued=enqueue(engine, frequency, key))
    trending = period_papers(engine, frequency, day)
    current = period_window(frequency, day)
    search = topic_search(engine)
    for_you = ForYou(engine, settings.embedding_model, trending)
    own_mailer = mailer is None
    run = _Run(engine, settings, secret, day, trending, current, search, for_you)
    run.mailer = mailer or Mailer(settings)
    try:
        pending = _due(engine, key, _now())
        run.sent_before = _sent_before(engine, [row.subscriber_id for row in pending])
        total, done = len(pending), 0
        while pending:
            retry: list[Any] = []
            for row in pending:
                outcome = run.deliver(row)
                if outcome == "retry":
                    summary.retried += 1
                    retry.append(row)
                else:
                    setattr(summary, outcome, getattr(summary, outcome) + 1)
                    done += 1
                    if progress is not None:
                        progress(done, total)
            if retry:
                sleep(backoff(min(r.attempts for r in retry) + 1))
                ids = {r.id for r in retry}
                pending = [r for r in _due(engine, key, datetime.max) if r.id in ids]
            else:
                pending = []
    finally:
        for_you.close()
        if own_mailer:
            run.mailer.close()
    return summary


@dataclass
class _Run:
    """What one send shares across its digests."""

    engine: Engine
    settings: Settings
    secret: str
    day: date
    trending: list[dict[str, Any]]
    window: Window
    search: Callable[[str, Window], list[dict[str, Any]]]
    for_you: ForYou
    mailer: Mailer | None = None
    sent_before: dict[int, set[str]] = field(default_factory=dict)

    def deliver(self, row: Any) -> str:
        """Claim, compose and send one outbox row: "sent", "empty", "skipped", "failed",
        "retry", or "taken" when another sender has it."""
        with _claimed(self.engine, row) as connection:
            if connection is None:
                return "taken"
            return self._deliver(connection, row)

    def _deliver(self, connection: Connection, row: Any) -> str:
        subscriber = Subscriber(
            row.subscriber_id,
            row.email,
            Status(row.subscriber_status),
            Frequency(row.frequency),
            tuple(row.topics or ()),
        )
        if subscriber.status != Status.confirmed:
            _finish(connection, row.id, "skipped")
            return "skipped"
        topics = {topic: self.search(topic, self.window) for topic in subscriber.topics}
        picks = self.for_you.papers(row.user_id) if row.user_id is not None else ([], [])
        theirs = followed_papers(connection, row.user_id, self.window)
        sent = self.sent_before.get(subscriber.id, set())
        digest = build_digest(subscriber, self.day, self.trending, topics, sent, picks, theirs)
        if not digest.paper_ids:
            _finish(connection, row.id, "empty")
            return "empty"
        try:
            self.mailer.send(digest_message(digest, self.settings, self.secret))
        except DeliveryError as error:
            attempts = row.attempts + 1
            final = error.permanent or attempts >= MAX_ATTEMPTS
            _record_failure(connection, row, error, final, backoff(attempts))
            return "failed" if final else "retry"
        _finish(connection, row.id, "sent", digest, reset_failures=row.failure_count > 0)
        return "sent"


def preview_digests(
    engine: Engine, frequency: Frequency, day: date, limit: int | None = None
) -> list[Digest]:
    """The digests a send would compose now (nothing is queued, sent or recorded)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(subscribers)
            .where(subscribers.c.status == Status.confirmed, subscribers.c.frequency == frequency)
            .order_by(subscribers.c.id)
            .limit(limit)
        ).all()
    trending = period_papers(engine, frequency, day)
    current = period_window(frequency, day)
    search = topic_search(engine)
    for_you = ForYou(engine, get_settings().embedding_model, trending)
    sent_before = _sent_before(engine, [row.id for row in rows])
    digests = []
    for row in rows:
        subscriber = subscriber_from_row(row)
        topics = {topic: search(topic, current) for topic in subscriber.topics}
        picks = for_you.papers(row.user_id) if row.user_id is not None else ([], [])
        with engine.connect() as connection:
            theirs = followed_papers(connection, row.user_id, current)
        sent = sent_before[row.id]
        digests.append(build_digest(subscriber, day, trending, topics, sent, picks, theirs))
    for_you.close()
    return digests


@dataclass(frozen=True, slots=True)
class DeliveryFailure:
    email: str
    period_key: str
    attempts: int
    error: str
    subscriber_status: str


def delivery_failures(engine: Engine, limit: int = 100) -> list[DeliveryFailure]:
    """Digests that could not be delivered, newest first (for admins)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                subscribers.c.email,
                digest_outbox.c.period_key,
                digest_outbox.c.attempts,
                digest_outbox.c.last_error,
                subscribers.c.status,
            )
            .join(subscribers, subscribers.c.id == digest_outbox.c.subscriber_id)
            .where(digest_outbox.c.status == "failed")
            .order_by(digest_outbox.c.next_attempt_at.desc())
            .limit(limit)
        ).all()
    return [DeliveryFailure(r[0], r[1], r[2], r[3] or "", r[4]) for r in rows]


def failed_periods(engine: Engine) -> list[str]:
    """The periods that hold failed deliveries, newest first."""
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(digest_outbox.c.period_key)
                .where(digest_outbox.c.status == "failed")
                .group_by(digest_outbox.c.period_key)
                .order_by(digest_outbox.c.period_key.desc())
            ).scalars()
        )


def retry_failed(engine: Engine, key: str) -> int:
    """Make the failed deliveries of period ``key`` due again (as new: their attempts start
    over); how many. ``send_digests`` for the period then sends them."""
    with engine.begin() as connection:
        return connection.execute(
            update(digest_outbox)
            .where(digest_outbox.c.period_key == key, digest_outbox.c.status == "failed")
            .values(status="pending", attempts=0, next_attempt_at=_now())
        ).rowcount


def period_of(key: str) -> tuple[Frequency, date]:
    """The frequency and a day of the period ``key`` names (``period_key`` read back);
    ValueError for anything else."""
    if "-W" in key:
        year, week = key.split("-W")
        return Frequency.weekly, date.fromisocalendar(int(year), int(week), 1)
    return Frequency.daily, date.fromisoformat(key)
