"""The worker's jobs: every run recorded in the store, one worker at a time per job, and a job
that has gone too long without succeeding shown as late and mailed to the admins once.

A run is written when it starts (``running``) and again when it ends (``ok`` or ``failed``,
with what it counted and, on failure, a short error with any credentials taken out). The
start is also the claim: it is made under ``one_at_a_time`` for the job and refused while
another run of the job is still going, so two workers, on one machine or several, never run
a job together. On PostgreSQL a run also holds the job's advisory lock (``holding_part``) for
its whole length. A run left ``running`` by a worker that stopped is closed as failed and the
job taken again: at once when that worker had this worker's name or was a process of this
machine that is gone, otherwise once ``LEASE`` has passed.

``every`` makes the start the schedule too: the job is not started while a run of it began
within that time, whichever worker ran it, so workers started at different moments still run
a job once per interval, and a restarted worker does not run everything again at once.

A job is late from its last success (or, never having succeeded, its first run) plus its
expected interval and a grace. A job that never ran is not late: nothing runs it (the admin
page shows when each job last ran). A lateness episode starts when a job is first seen late
and ends when it no longer is (it succeeded, or is no longer scheduled); every admin with a
verified address is mailed once per episode.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from sqlalchemy import Connection, Engine, case, delete, func, insert, or_, select, update

from broadsheet.config import Settings
from broadsheet.db.bulk import insert_ignoring_conflicts
from broadsheet.db.schema import job_alerts, job_runs, users
from broadsheet.db.work_locks import holding_part, one_at_a_time
from broadsheet.digest.mailer import DeliveryError, Mailer

log = logging.getLogger(__name__)

RUNNING, OK, FAILED = "running", "ok", "failed"
INDEX = "index"
DIGEST_DAILY = "digest:daily"
DIGEST_WEEKLY = "digest:weekly"
CONFIRMATIONS = "confirmations"
TICK = timedelta(minutes=1)  # how often the worker looks at what is due
# A run still "running" after this long was left by a worker that stopped. Runs take seconds
# to minutes (a first index of a large import: hours, which on PostgreSQL the advisory lock
# covers however long it takes).
LEASE = timedelta(hours=6)
KEEP = timedelta(days=30)  # older runs are deleted, but for each job's last success
ERROR_CHARS = 500
ALERT_CLAIM_TIMEOUTS = 10  # an alert's claim lapses after this many SMTP timeouts
LEFT_RUNNING = "left running: its worker stopped"

_in_flight: set[int] = set()  # ids of the runs this process is making now


def harvest_job(category: str) -> str:
    return f"harvest:{category}"


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def worker_name() -> str:
    """This process as runs name it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(slots=True)
class Run:
    """A run being made; the job fills in ``counts``."""

    id: int
    job: str
    started_at: datetime
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JobRun:
    id: int
    job: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    counts: dict[str, Any]
    error: str | None
    worker: str


@dataclass(frozen=True, slots=True)
class JobStatus:
    """A job's latest run, when it last succeeded and when it first ran (of the runs kept)."""

    job: str
    last: JobRun
    last_ok_at: datetime | None
    first_started_at: datetime


@dataclass(frozen=True, slots=True)
class LateJob:
    job: str
    late_since: datetime
    every: timedelta  # its expected interval
    last_ok_at: datetime | None
    last: JobRun


@dataclass(slots=True)
class AlertRound:
    """What one look at late jobs did."""

    late: list[LateJob] = field(default_factory=list)
    mailed: list[str] = field(default_factory=list)  # jobs whose episode was mailed now
    ended: list[str] = field(default_factory=list)  # jobs no longer late
    failed: int = 0  # mails to admins the server refused


_USERINFO = re.compile(r"(?<=://)[^/\s@]+@")
_SECRET_VALUES = re.compile(
    r"(?i)\b(password|passwd|pwd|token|secret|api_?key|access_token|auth)=([^&\s'\"]+)"
)


def short_error(error: BaseException) -> str:
    """One line saying what went wrong, without credentials (``user:pass@`` in addresses,
    ``password=``, ``token=`` and the like), at most ``ERROR_CHARS`` long."""
    said = str(error)
    text = f"{type(error).__name__}: {said}" if said else type(error).__name__
    text = " ".join(text.split())
    text = _SECRET_VALUES.sub(r"\1=***", _USERINFO.sub("***@", text))
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def _gone_from_this_machine(worker: str) -> bool:
    host, _, pid = worker.rpartition(":")
    if os.name != "posix" or host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)  # signal 0: is it there?
    except ProcessLookupError:
        return True
    except OSError:  # there, but another user's
        return False
    return False


def _left_running(row: Any, worker: str, now: datetime, lease: timedelta) -> bool:
    if row.id in _in_flight:
        return False
    if row.worker == worker:  # this worker's name, not making it now: an earlier life's
        return True
    return now - row.started_at >= lease or _gone_from_this_machine(row.worker)


def _start(
    engine: Engine,
    job: str,
    worker: str,
    now: datetime,
    every: timedelta | None,
    lease: timedelta,
) -> Run | None:
    with engine.begin() as connection:
        one_at_a_time(connection, f"job_runs:{job}")
        running = connection.execute(
            select(job_runs.c.id, job_runs.c.started_at, job_runs.c.worker).where(
                job_runs.c.job == job, job_runs.c.outcome == RUNNING
            )
        ).all()
        left = [row.id for row in running if _left_running(row, worker, now, lease)]
        if len(left) < len(running):
            return None  # another worker is running it
        if left:
            connection.execute(
                update(job_runs)
                .where(job_runs.c.id.in_(left))
                .values(outcome=FAILED, finished_at=now, error=LEFT_RUNNING)
            )
        if every is not None:
            last = connection.execute(
                select(func.max(job_runs.c.started_at)).where(job_runs.c.job == job)
            ).scalar()
            if last is not None and now - last < every:
                return None
        run_id = connection.execute(
            insert(job_runs)
            .values(job=job, started_at=now, outcome=RUNNING, counts={}, worker=worker)
            .returning(job_runs.c.id)
        ).scalar_one()
    return Run(run_id, job, now)


def _finish(engine: Engine, run: Run, outcome: str, now: datetime, error: str | None) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(job_runs)
            .where(job_runs.c.id == run.id)
            .values(finished_at=now, outcome=outcome, counts=dict(run.counts), error=error)
        )


@contextmanager
def record_run(
    engine: Engine,
    job: str,
    worker: str,
    *,
    every: timedelta | None = None,
    clock: Callable[[], datetime] = utc_now,
    lease: timedelta = LEASE,
) -> Iterator[Run | None]:
    """Record a run of ``job`` by ``worker`` around the block, which gets the run, or None
    (and should do nothing) while another worker runs the job or, with ``every``, while a run
    of it began within that time. The run ends ``ok``, or ``failed`` with the error when the
    block raises (the error goes on up)."""
    with holding_part(engine, f"job:{job}", 0) as held:
        run = _start(engine, job, worker, clock(), every, lease) if held else None
        if run is None:
            yield None
            return
        _in_flight.add(run.id)
        try:
            yield run
        except BaseException as exc:
            _finish(engine, run, FAILED, clock(), short_error(exc))
            raise
        else:
            _finish(engine, run, OK, clock(), None)
        finally:
            _in_flight.discard(run.id)


def _job_run(row: Any) -> JobRun:
    return JobRun(
        row.id, row.job, row.started_at, row.finished_at, row.outcome, dict(row.counts or {}),
        row.error, row.worker,
    )  # fmt: skip


def _statuses(connection: Connection) -> dict[str, JobStatus]:
    latest = select(func.max(job_runs.c.id)).group_by(job_runs.c.job).scalar_subquery()
    last = {
        row.job: _job_run(row)
        for row in connection.execute(select(job_runs).where(job_runs.c.id.in_(latest)))
    }
    summary = connection.execute(
        select(
            job_runs.c.job,
            func.min(job_runs.c.started_at).label("first_started_at"),
            func.max(case((job_runs.c.outcome == OK, job_runs.c.finished_at))).label("last_ok"),
        ).group_by(job_runs.c.job)
    )
    return {
        row.job: JobStatus(row.job, last[row.job], row.last_ok, row.first_started_at)
        for row in summary
        if row.job in last
    }


def last_runs(engine: Engine) -> list[JobStatus]:
    """Every job that has run: its latest run and when it last succeeded, by job name."""
    with engine.connect() as connection:
        statuses = _statuses(connection)
    return [statuses[job] for job in sorted(statuses)]


def runs(engine: Engine, job: str, limit: int = 20) -> list[JobRun]:
    """The latest runs of ``job``, newest first."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(job_runs)
            .where(job_runs.c.job == job)
            .order_by(job_runs.c.started_at.desc(), job_runs.c.id.desc())
            .limit(limit)
        )
        return [_job_run(row) for row in rows]


def job_schedules(settings: Settings) -> dict[str, timedelta]:
    """Each job the worker runs, with the longest it expects between two successes."""
    harvests = timedelta(hours=settings.harvest_every_hours)
    schedules = {harvest_job(category): harvests for category in settings.harvest_categories}
    if settings.index_every_minutes > 0:
        schedules[INDEX] = timedelta(minutes=settings.index_every_minutes)
    elif settings.harvest_categories:  # after each harvest only
        schedules[INDEX] = harvests
    schedules[CONFIRMATIONS] = TICK
    schedules[DIGEST_DAILY] = timedelta(days=1)
    schedules[DIGEST_WEEKLY] = timedelta(weeks=1)
    return schedules


def _late(
    connection: Connection, schedules: Mapping[str, timedelta], now: datetime, grace: timedelta
) -> list[LateJob]:
    statuses = _statuses(connection)
    late = []
    for job, every in sorted(schedules.items()):
        status = statuses.get(job)
        if status is None:
            continue
        since = (status.last_ok_at or status.first_started_at) + every + grace
        if now >= since:
            late.append(LateJob(job, since, every, status.last_ok_at, status.last))
    return late


def late_jobs(
    engine: Engine,
    schedules: Mapping[str, timedelta],
    now: datetime,
    grace: timedelta = timedelta(0),
) -> list[LateJob]:
    """The jobs of ``schedules`` (name: expected interval) without a success for longer than
    their interval and ``grace``."""
    with engine.connect() as connection:
        return _late(connection, schedules, now, grace)


def grace(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.job_grace_minutes)


def _admin_addresses(connection: Connection) -> list[str]:
    return list(
        connection.execute(
            select(users.c.email)
            .where(
                users.c.is_admin.is_(True),
                users.c.email.is_not(None),
                users.c.email_verified_at.is_not(None),
            )
            .order_by(users.c.id)
        ).scalars()
    )


def _claim_alerts(
    engine: Engine, settings: Settings, schedules: Mapping[str, timedelta], now: datetime
) -> tuple[AlertRound, list[LateJob], list[str]]:
    """Start and end episodes, and claim the late jobs whose admins are still to be told;
    one worker at a time, so no two claim the same."""
    with engine.begin() as connection:
        one_at_a_time(connection, "job_alerts")
        late = _late(connection, schedules, now, grace(settings))
        names = [job.job for job in late]
        open_ = connection.execute(select(job_alerts.c.job)).scalars().all()
        ended = [job for job in open_ if job not in names]
        if ended:
            connection.execute(delete(job_alerts).where(job_alerts.c.job.in_(ended)))
        if late:
            connection.execute(
                insert_ignoring_conflicts(connection, job_alerts, ["job"]),
                [{"job": job.job, "late_since": job.late_since} for job in late],
            )
        round_ = AlertRound(late=late, ended=ended)
        admins = _admin_addresses(connection) if late else []
        if not admins:  # kept owed: an admin who verifies an address later is told
            return round_, [], []
        lapsed = now - timedelta(seconds=ALERT_CLAIM_TIMEOUTS * settings.smtp_timeout)
        owed = set(
            connection.execute(
                select(job_alerts.c.job).where(
                    job_alerts.c.job.in_(names),
                    job_alerts.c.mailed_at.is_(None),
                    or_(job_alerts.c.claimed_at.is_(None), job_alerts.c.claimed_at < lapsed),
                )
            ).scalars()
        )
        if owed:
            connection.execute(
                update(job_alerts).where(job_alerts.c.job.in_(owed)).values(claimed_at=now)
            )
    return round_, [job for job in late if job.job in owed], admins


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "never"


def _span(interval: timedelta) -> str:
    minutes = interval.total_seconds() / 60
    if minutes >= 48 * 60 and minutes % (24 * 60) == 0:
        return f"{minutes / (24 * 60):g} days"
    if minutes >= 60:
        return f"{minutes / 60:g} h"
    return f"{minutes:g} min"


def alert_message(settings: Settings, address: str, late: Sequence[LateJob]) -> EmailMessage:
    """The mail telling an admin that these jobs are late."""
    message = EmailMessage()
    names = ", ".join(job.job for job in late)
    late_ones = f"{names} is late" if len(late) == 1 else f"{len(late)} jobs are late: {names}"
    message["Subject"] = f"{settings.site_name}: {late_ones}"
    message["From"] = settings.mail_from
    message["To"] = address
    message["Message-ID"] = make_msgid(domain="broadsheet.local")
    message["Auto-Submitted"] = "auto-generated"
    lines = [
        f"The {settings.site_name} worker has not completed these jobs for longer than "
        f"expected (each one's interval, plus {_span(grace(settings))} of grace):",
        "",
    ]
    for job in late:
        last = job.last
        ran = f"{last.outcome} (started {_when(last.started_at)})"
        if last.error:
            ran += f": {last.error}"
        lines += [
            f"{job.job} (expected every {_span(job.every)})",
            f"  late since:   {_when(job.late_since)}",
            f"  last success: {_when(job.last_ok_at)}",
            f"  last run:     {ran}",
            "",
        ]
    lines += [
        f"Every job's runs: {settings.base_url.rstrip('/')}/admin",
        "",
        "You are told once while a job stays late; once it succeeds again, the next time it is "
        "late is told anew.",
    ]
    message.set_content("\n".join(lines) + "\n")
    return message


def _mark(
    engine: Engine, jobs: list[str], claimed_at: datetime, mailed: bool, now: datetime
) -> None:
    values = {"mailed_at": now} if mailed else {"claimed_at": None}
    with engine.begin() as connection:
        connection.execute(
            update(job_alerts)
            .where(job_alerts.c.job.in_(jobs), job_alerts.c.claimed_at == claimed_at)
            .values(values)
        )


def alert_late_jobs(
    engine: Engine,
    settings: Settings,
    now: datetime | None = None,
    *,
    schedules: Mapping[str, timedelta] | None = None,
) -> AlertRound:
    """Mail every admin with a verified address about the jobs that became late, once per
    episode, and end the episodes of jobs no longer late.

    A mail the server refuses for now to every admin leaves the episode owed for the next
    round; one that reached any admin, or was refused for good, counts as told. A worker that
    stops between claiming and mailing leaves it owed once its claim lapses.
    """
    now = now or utc_now()
    schedules = job_schedules(settings) if schedules is None else schedules
    round_, owed, admins = _claim_alerts(engine, settings, schedules, now)
    if not owed:
        return round_
    told = retry = False
    with Mailer(settings) as mailer:
        for address in admins:
            try:
                mailer.send(alert_message(settings, address, owed), address)
                told = True
            except DeliveryError as exc:
                round_.failed += 1
                retry = retry or not exc.permanent
                log.warning("late jobs not mailed to an admin: %s", exc)
    mailed = told or not retry
    jobs = [job.job for job in owed]
    _mark(engine, jobs, now, mailed, now)
    if mailed:
        round_.mailed = jobs
    return round_


def prune_runs(engine: Engine, now: datetime, keep: timedelta = KEEP) -> int:
    """Delete the runs that started before ``keep``, but for each job's last success and any
    still running; how many went."""
    last_ok = (
        select(func.max(job_runs.c.id))
        .where(job_runs.c.outcome == OK)
        .group_by(job_runs.c.job)
        .scalar_subquery()
    )
    with engine.begin() as connection:
        return connection.execute(
            delete(job_runs).where(
                job_runs.c.started_at < now - keep,
                job_runs.c.outcome != RUNNING,
                job_runs.c.id.not_in(last_ok),
            )
        ).rowcount
