"""``broadsheet worker``: harvest on a schedule and send the digests at the configured hour.

Each tick looks at the clock and does what is due: a harvest of every configured category
every ``harvest_every_hours``; from ``digest_hour`` (UTC) on, the daily digest of the day
before; on ``digest_weekday`` from that hour, the weekly digest of the week before. A digest
send is idempotent (the outbox), so each tick after the hour sends it again for the period:
that delivers to subscribers confirmed since, and retries mails whose back-off has passed.
Nothing is lost across a restart: the outbox is in the store. Every tick also mails the
confirmation links still owed (addresses kept while mail was not configured, or whose mail
failed), claiming each before its mail and recording it after: a worker killed mid-round
leaves the others owed, and the one it held is mailed once its claim lapses.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine

from broadsheet.config import Settings
from broadsheet.digest.confirmation import ConfirmationRound, send_unmailed_confirmations
from broadsheet.digest.outbox import DeliverySummary, send_digests
from broadsheet.digest.subscriptions import Frequency
from broadsheet.ingest.harvest import HarvestError, harvest_arxiv

log = logging.getLogger(__name__)
TICK_SECONDS = 60.0
RESEND_EVERY = timedelta(hours=1)  # how often a due period is swept again for retries


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class Worker:
    engine: Engine
    settings: Settings
    secret: str
    clock: Callable[[], datetime] = _utc_now
    harvest: Callable[..., object] = harvest_arxiv
    send: Callable[..., DeliverySummary] = send_digests
    confirm: Callable[..., ConfirmationRound] = send_unmailed_confirmations
    report: Callable[[str], None] = log.info
    last_harvest: datetime | None = None
    last_sent: dict[tuple[Frequency, date], datetime] = field(default_factory=dict)

    def tick(self) -> None:
        """Do whatever is due now."""
        now = self.clock()
        owed = self.confirm(self.engine, self.settings, self.secret, now)
        if owed.sent or owed.failed:
            self.report(f"confirmation mails owed: {owed.sent} sent, {owed.failed} failed")
        interval = timedelta(hours=self.settings.harvest_every_hours)
        if self.settings.harvest_categories and (
            self.last_harvest is None or now - self.last_harvest >= interval
        ):
            self._harvest(now)
        if now.hour >= self.settings.digest_hour:
            self._send(Frequency.daily, now.date() - timedelta(days=1), now)
            if now.weekday() == self.settings.digest_weekday:
                self._send(Frequency.weekly, now.date() - timedelta(days=7), now)

    def _harvest(self, now: datetime) -> None:
        self.last_harvest = now
        since = now.date() - timedelta(days=2)  # overlapping windows; upserts are idempotent
        for category in self.settings.harvest_categories:
            try:
                summary = self.harvest(
                    self.engine, category=category, since=since, settings=self.settings
                )
                self.report(f"harvested {category}: {summary}")
            except HarvestError as exc:  # the next harvest tries again
                self.report(f"harvest of {category} failed: {exc}")

    def _send(self, frequency: Frequency, day: date, now: datetime) -> None:
        last = self.last_sent.get((frequency, day))
        if last is not None and now - last < RESEND_EVERY:
            return
        self.last_sent[(frequency, day)] = now
        summary = self.send(self.engine, self.settings, self.secret, frequency, day)
        if summary.queued or summary.sent or summary.failed:
            self.report(
                f"{frequency} digest {summary.period_key}: {summary.sent} sent, "
                f"{summary.failed} failed, {summary.retried} to retry"
            )

    def run(
        self, stop: threading.Event | None = None, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        """Tick every minute until ``stop`` is set (Ctrl-C in the command)."""
        stop = stop or threading.Event()
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # a bad tick must not end the worker: log it, try again
                log.exception("worker tick failed")
            sleep(TICK_SECONDS)
