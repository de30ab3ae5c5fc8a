"""``broadsheet worker``: harvest and index on a schedule, send the digests at the set hour.

Each tick looks at the clock and does what is due, each job's run recorded in the store
(``ops/jobs.py``: start, end, outcome, counts, error), so admins see what ran and what is late:

- ``confirmations``: every tick, the confirmation links still owed (addresses kept while mail
  was not configured, or whose mail failed), each claimed before its mail and recorded after:
  a worker killed mid-round leaves the others owed, and the one it held is mailed once its
  claim lapses.
- ``harvest:<category>``: every ``harvest_every_hours``, each configured category.
- ``index``: after each harvest, and every ``index_every_minutes`` (papers imported with
  ``broadsheet import`` or submitted by members): what ``broadsheet index`` does, embedding
  the papers that lack vectors and bringing the saved vector graph and keyword index up to date.
- ``digest:daily`` from ``digest_hour`` (UTC), the digest of the day before; ``digest:weekly``
  on ``digest_weekday`` from that hour, of the week before. A digest send is idempotent (the
  outbox), so it is swept again every ``RESEND_EVERY`` for the period: that delivers to
  subscribers confirmed since, and retries mails whose back-off has passed.

Then the admins are mailed about jobs that became late, once per lateness episode.

Schedules are kept in the store, not in the worker: several workers (on one machine or
several) run each job once per interval and never two at once, and a restarted worker picks
up where the last run left off. A job that fails is recorded as failed with its error and
tried again when next due; the other jobs go on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Engine

from broadsheet.config import Settings
from broadsheet.digest.confirmation import ConfirmationRound, send_unmailed_confirmations
from broadsheet.digest.outbox import DeliverySummary, send_digests
from broadsheet.digest.subscriptions import Frequency
from broadsheet.ingest.harvest import harvest_arxiv
from broadsheet.ops.jobs import (
    CONFIRMATIONS,
    DIGEST_DAILY,
    DIGEST_WEEKLY,
    INDEX,
    TICK,
    AlertRound,
    Run,
    alert_late_jobs,
    harvest_job,
    prune_runs,
    record_run,
    short_error,
    utc_now,
    worker_name,
)
from broadsheet.search.embed import load_embedder
from broadsheet.search.indexing import index_papers
from broadsheet.search.keyword_index import save_keyword_index
from broadsheet.search.vectors import save_graph

log = logging.getLogger(__name__)
TICK_SECONDS = TICK.total_seconds()
RESEND_EVERY = timedelta(hours=1)  # how often a due period is swept again for retries
PRUNE_EVERY = timedelta(hours=1)  # how often runs past ops.jobs.KEEP are deleted


def index_new_papers(engine: Engine, settings: Settings) -> dict[str, int]:
    """What ``broadsheet index`` does, with the settings' model: embed every paper that lacks
    a vector (or whose text changed), then save the vector graph and keyword index where the
    store keeps them beside itself."""
    embedder = load_embedder(settings.embedding_model)
    summary = index_papers(engine, embedder, passages=settings.embed_passages)
    graph = save_graph(engine, embedder.name)
    keywords = save_keyword_index(engine)
    return {
        "embedded": summary.embedded,
        "papers": summary.total,
        "graph": graph or 0,
        "saved_keywords": keywords or 0,
    }


def _counts(summary: object) -> dict[str, int]:
    """The whole numbers a job's summary holds."""
    if is_dataclass(summary) and not isinstance(summary, type):
        fields = asdict(summary)
    elif isinstance(summary, Mapping):
        fields = dict(summary)
    else:
        return {}
    return {k: v for k, v in fields.items() if isinstance(v, int) and not isinstance(v, bool)}


@dataclass
class Worker:
    engine: Engine
    settings: Settings
    secret: str
    clock: Callable[[], datetime] = utc_now
    harvest: Callable[..., object] = harvest_arxiv
    send: Callable[..., DeliverySummary] = send_digests
    confirm: Callable[..., ConfirmationRound] = send_unmailed_confirmations
    index: Callable[[Engine, Settings], Mapping[str, int]] = index_new_papers
    alert: Callable[..., AlertRound] = alert_late_jobs
    report: Callable[[str], None] = log.info
    name: str = field(default_factory=worker_name)  # host:pid, in each run it records
    pruned_at: datetime | None = None

    def tick(self) -> None:
        """Do whatever is due now."""
        now = self.clock()
        self._run(CONFIRMATIONS, self._confirm)
        if self.settings.harvest_categories and self._harvest(now):
            self._run(INDEX, self._index)
        elif self.settings.index_every_minutes > 0:
            self._run(
                INDEX, self._index, every=timedelta(minutes=self.settings.index_every_minutes)
            )
        if now.hour >= self.settings.digest_hour:
            self._send(DIGEST_DAILY, Frequency.daily, now.date() - timedelta(days=1))
            if now.weekday() == self.settings.digest_weekday:
                self._send(DIGEST_WEEKLY, Frequency.weekly, now.date() - timedelta(days=7))
        self._alert(now)

    def _run(self, job: str, work: Callable[[Run], None], every: timedelta | None = None) -> bool:
        """Do ``work`` as a recorded run of ``job`` unless another worker is doing it (or, with
        ``every``, it is not due); True when it ran and succeeded. A failure is recorded and
        reported, and ends only this job."""
        try:
            with record_run(self.engine, job, self.name, every=every, clock=self.clock) as run:
                if run is None:
                    return False
                work(run)
        except Exception as exc:  # recorded with the run; the next job goes on
            self.report(f"{job} failed: {short_error(exc)}")
            return False
        return True

    def _confirm(self, run: Run) -> None:
        owed = self.confirm(self.engine, self.settings, self.secret, self.clock())
        run.counts.update(sent=owed.sent, failed=owed.failed)
        if owed.sent or owed.failed:
            self.report(f"confirmation mails owed: {owed.sent} sent, {owed.failed} failed")

    def _harvest(self, now: datetime) -> bool:
        """Harvest each category that is due; True when any harvest ran (the index follows
        it: a failed harvest may have stored pages before it stopped)."""
        since = now.date() - timedelta(days=2)  # overlapping windows; upserts are idempotent
        every = timedelta(hours=self.settings.harvest_every_hours)
        ran = False
        for category in self.settings.harvest_categories:

            def harvest(run: Run, category: str = category) -> None:
                nonlocal ran
                ran = True
                summary = self.harvest(
                    self.engine, category=category, since=since, settings=self.settings
                )
                run.counts.update(_counts(summary))
                self.report(f"harvested {category}: {summary}")

            self._run(harvest_job(category), harvest, every=every)
        return ran

    def _index(self, run: Run) -> None:
        run.counts.update(self.index(self.engine, self.settings))
        if run.counts.get("embedded"):
            self.report(f"indexed: {run.counts['embedded']} papers embedded")

    def _send(self, job: str, frequency: Frequency, day: date) -> None:
        def send(run: Run) -> None:
            summary = self.send(self.engine, self.settings, self.secret, frequency, day)
            run.counts.update(_counts(summary))
            if summary.queued or summary.sent or summary.failed:
                self.report(
                    f"{frequency} digest {summary.period_key}: {summary.sent} sent, "
                    f"{summary.failed} failed, {summary.retried} to retry"
                )

        self._run(job, send, every=RESEND_EVERY)

    def _alert(self, now: datetime) -> None:
        try:
            told = self.alert(self.engine, self.settings, now)
            if told.mailed:
                self.report(f"late jobs mailed to the admins: {', '.join(told.mailed)}")
            if self.pruned_at is None or now - self.pruned_at >= PRUNE_EVERY:
                self.pruned_at = now
                prune_runs(self.engine, now)
        except Exception as exc:  # the jobs ran; the next tick tells the admins
            self.report(f"late jobs not looked at: {short_error(exc)}")

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
