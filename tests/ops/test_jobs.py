"""Job runs in the store: recorded, claimed by one worker at a time, and late ones mailed to
the admins once per episode (a real SMTP server)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select, update

from broadsheet.community.accounts import create_member
from broadsheet.config import Settings
from broadsheet.db.schema import job_alerts, job_runs, users
from broadsheet.ops.jobs import (
    FAILED,
    LEASE,
    LEFT_RUNNING,
    OK,
    RUNNING,
    alert_late_jobs,
    job_schedules,
    last_runs,
    late_jobs,
    prune_runs,
    record_run,
    runs,
    short_error,
)
from smtp_sink import SmtpSink

T0 = datetime(2024, 1, 10, 1, 0)
PASSWORD = "long enough password"
HOURLY = {"harvest:cs.CL": timedelta(hours=1)}


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _admin(store: Engine, name: str, verified: bool = True, is_admin: bool = True) -> str:
    member = create_member(store, name, PASSWORD, is_admin=is_admin)
    address = f"{name}@example.org"
    with store.begin() as connection:
        connection.execute(
            update(users)
            .where(users.c.id == member.id)
            .values(email=address, email_verified_at=T0 if verified else None)
        )
    return address


def _fail(store: Engine, job: str, clock: Clock, message: str = "arXiv is down") -> None:
    with pytest.raises(RuntimeError), record_run(store, job, "w", clock=clock) as run:
        assert run is not None
        raise RuntimeError(message)


def _succeed(store: Engine, job: str, clock: Clock) -> None:
    with record_run(store, job, "w", clock=clock) as run:
        assert run is not None


def test_runs_are_recorded_with_outcome_counts_and_a_short_error(store: Engine) -> None:
    clock = Clock(T0)
    with record_run(store, "index", "host:1", clock=clock) as run:
        assert run is not None
        with store.connect() as connection:
            assert connection.execute(select(job_runs.c.outcome)).scalar_one() == RUNNING
        run.counts.update(embedded=5, papers=7)
        clock.now += timedelta(minutes=3)
    clock.now += timedelta(hours=1)
    secret_url = "https://ada:hunter2@export.arxiv.org/api/query?token=abc123&start=0"
    with pytest.raises(RuntimeError), record_run(store, "index", "host:1", clock=clock):
        raise RuntimeError(f"{secret_url} answered HTTP 503\n" + "x" * 2000)

    latest, first = runs(store, "index")
    assert (first.outcome, first.counts, first.error) == (OK, {"embedded": 5, "papers": 7}, None)
    assert (first.started_at, first.finished_at) == (T0, T0 + timedelta(minutes=3))
    assert latest.outcome == FAILED and latest.finished_at == clock.now
    assert latest.error.startswith("RuntimeError: https://***@export.arxiv.org")
    assert "hunter2" not in latest.error and "abc123" not in latest.error
    assert "token=***" in latest.error and "\n" not in latest.error
    assert len(latest.error) <= 500
    (status,) = last_runs(store)
    assert status.job == "index" and status.last.id == latest.id
    assert status.last_ok_at == T0 + timedelta(minutes=3)


def test_a_password_in_a_database_address_stays_out_of_the_error() -> None:
    error = OSError("could not connect: postgresql://broadsheet:s3cret@db/x password=s3cret")
    assert "s3cret" not in short_error(error)


def test_a_job_is_not_started_again_within_its_interval(store: Engine) -> None:
    clock = Clock(T0)
    ran = []
    for minutes in (0, 59, 60):
        clock.now = T0 + timedelta(minutes=minutes)
        with record_run(store, "index", "w", every=timedelta(hours=1), clock=clock) as run:
            if run is not None:
                ran.append(minutes)
    assert ran == [0, 60]


def test_while_one_worker_runs_a_job_another_does_not(store: Engine) -> None:
    inside, release = threading.Barrier(2), threading.Event()
    ran: list[str] = []

    def worker(name: str) -> None:
        with record_run(store, "harvest:cs.CL", name) as run:
            if run is None:
                inside.wait(10)  # the other holds it now
                return
            ran.append(name)
            inside.wait(10)
            release.wait(10)

    threads = [threading.Thread(target=worker, args=(name,)) for name in ("a", "b")]
    threads[0].start()
    while not ran:  # a holds the job
        threading.Event().wait(0.01)
    threads[1].start()
    threads[1].join(10)
    release.set()
    threads[0].join(10)
    assert ran == ["a"]
    with store.connect() as connection:
        rows = connection.execute(select(job_runs.c.worker, job_runs.c.outcome)).all()
    assert [tuple(row) for row in rows] == [("a", OK)]


def test_two_workers_starting_at_once_run_a_job_once(store: Engine) -> None:
    start = threading.Barrier(8)
    ran: list[int] = []

    def worker(number: int) -> None:
        start.wait(10)
        with record_run(store, "index", f"w{number}", every=timedelta(hours=1)) as run:
            if run is not None:
                ran.append(number)
                threading.Event().wait(0.5)  # still running while the others look

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(ran) == 1
    with store.connect() as connection:
        assert connection.execute(select(func.count()).select_from(job_runs)).scalar() == 1


def _left_running(store: Engine, worker: str, started: datetime) -> None:
    with store.begin() as connection:
        connection.execute(
            job_runs.insert().values(
                job="index", started_at=started, outcome=RUNNING, counts={}, worker=worker
            )
        )


def test_a_run_left_by_a_stopped_process_of_this_machine_is_taken_over_at_once(
    store: Engine,
) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    _left_running(store, f"{socket.gethostname()}:{gone}", T0)
    with record_run(store, "index", "w", clock=Clock(T0 + timedelta(minutes=1))) as run:
        assert run is not None
    old, new = sorted(runs(store, "index"), key=lambda r: r.id)
    assert (old.outcome, old.error, new.outcome) == (FAILED, LEFT_RUNNING, OK)


def test_a_run_of_another_machine_holds_the_job_until_its_lease_lapses(store: Engine) -> None:
    _left_running(store, "elsewhere:1", T0)
    with record_run(store, "index", "w", clock=Clock(T0 + LEASE / 2)) as run:
        assert run is None
    with record_run(store, "index", "w", clock=Clock(T0 + LEASE)) as run:
        assert run is not None
    assert [r.outcome for r in runs(store, "index")] == [OK, FAILED]


def test_a_run_this_worker_left_before_a_restart_is_taken_over(store: Engine) -> None:
    _left_running(store, "worker-1", T0)
    with record_run(store, "index", "worker-1", clock=Clock(T0 + timedelta(minutes=1))) as run:
        assert run is not None


def test_a_job_is_late_from_its_last_success_plus_interval_and_grace(store: Engine) -> None:
    clock = Clock(T0)
    assert late_jobs(store, HOURLY, T0 + timedelta(days=9)) == []  # never ran: nothing runs it
    _fail(store, "harvest:cs.CL", clock)  # never succeeded: late from its first run
    grace = timedelta(minutes=30)
    assert late_jobs(store, HOURLY, T0 + timedelta(minutes=89), grace) == []
    (late,) = late_jobs(store, HOURLY, T0 + timedelta(minutes=90), grace)
    assert (late.job, late.late_since, late.last_ok_at) == ("harvest:cs.CL", T0 + grace * 3, None)
    assert late.last.outcome == FAILED and late.last.error == "RuntimeError: arXiv is down"
    clock.now = T0 + timedelta(hours=2)
    _succeed(store, "harvest:cs.CL", clock)
    assert late_jobs(store, HOURLY, clock.now + timedelta(minutes=89), grace) == []
    clock.now += timedelta(minutes=30)
    _fail(store, "harvest:cs.CL", clock)  # a failure after a success: late from the success
    (late,) = late_jobs(store, HOURLY, T0 + timedelta(hours=4), grace)
    assert late.late_since == T0 + timedelta(hours=3, minutes=30)
    assert late.last_ok_at == T0 + timedelta(hours=2)


def test_the_schedules_follow_the_settings() -> None:
    settings = Settings(harvest_categories=["cs.CL"], harvest_every_hours=3, index_every_minutes=0)
    schedules = job_schedules(settings)
    assert schedules["harvest:cs.CL"] == schedules["index"] == timedelta(hours=3)
    assert schedules["digest:daily"] == timedelta(days=1)
    assert job_schedules(Settings(index_every_minutes=20))["index"] == timedelta(minutes=20)
    assert "index" not in job_schedules(Settings(index_every_minutes=0))


def test_late_jobs_are_mailed_to_verified_admins_once_per_episode(
    store: Engine, smtp: SmtpSink
) -> None:
    admins = [_admin(store, "ada"), _admin(store, "grace")]
    _admin(store, "unverified", verified=False)
    _admin(store, "member", is_admin=False)
    settings = Settings(
        smtp_host=smtp.host, smtp_port=smtp.port, job_grace_minutes=0,
        base_url="https://papers.example.org",
    )  # fmt: skip
    clock = Clock(T0)
    _fail(store, "harvest:cs.CL", clock, "HarvestError: export.arxiv.org answered HTTP 503")

    told = alert_late_jobs(store, settings, T0 + timedelta(minutes=30), schedules=HOURLY)
    assert (told.late, told.mailed, smtp.messages) == ([], [], [])
    told = alert_late_jobs(store, settings, T0 + timedelta(hours=1), schedules=HOURLY)
    assert told.mailed == ["harvest:cs.CL"]
    assert sorted(m["To"] for m in smtp.messages) == admins
    mail = smtp.messages[0]
    assert mail["Subject"] == "Broadsheet: harvest:cs.CL is late"
    body = mail.get_content()
    assert "answered HTTP 503" in body and "last success: never" in body
    assert "https://papers.example.org/admin" in body

    for minutes in (61, 120, 600):  # later rounds of the same episode
        told = alert_late_jobs(store, settings, T0 + timedelta(minutes=minutes), schedules=HOURLY)
        assert told.mailed == [] and [j.job for j in told.late] == ["harvest:cs.CL"]
    assert len(smtp.messages) == 2

    clock.now = T0 + timedelta(hours=11)
    _succeed(store, "harvest:cs.CL", clock)  # the episode ends
    told = alert_late_jobs(store, settings, clock.now, schedules=HOURLY)
    assert told.ended == ["harvest:cs.CL"] and told.late == []
    with store.connect() as connection:
        assert connection.execute(select(func.count()).select_from(job_alerts)).scalar() == 0
    told = alert_late_jobs(store, settings, clock.now + timedelta(hours=1), schedules=HOURLY)
    assert told.mailed == ["harvest:cs.CL"]  # late again: a new episode, told anew
    assert len(smtp.messages) == 4


def test_a_mail_refused_for_now_is_sent_next_round(store: Engine, smtp: SmtpSink) -> None:
    _admin(store, "ada")
    settings = Settings(smtp_host=smtp.host, smtp_port=smtp.port, job_grace_minutes=0)
    _fail(store, "harvest:cs.CL", Clock(T0))
    smtp.replies.append("451 try again later")
    told = alert_late_jobs(store, settings, T0 + timedelta(hours=1), schedules=HOURLY)
    assert (told.mailed, told.failed, smtp.messages) == ([], 1, [])
    told = alert_late_jobs(store, settings, T0 + timedelta(hours=1, minutes=1), schedules=HOURLY)
    assert told.mailed == ["harvest:cs.CL"] and len(smtp.messages) == 1


def test_an_admin_who_verifies_later_is_told_of_the_episode(store: Engine, smtp: SmtpSink) -> None:
    settings = Settings(smtp_host=smtp.host, smtp_port=smtp.port, job_grace_minutes=0)
    _fail(store, "harvest:cs.CL", Clock(T0))
    assert alert_late_jobs(store, settings, T0 + timedelta(hours=1), schedules=HOURLY).late
    assert smtp.messages == []  # no admin to tell yet
    _admin(store, "ada")
    told = alert_late_jobs(store, settings, T0 + timedelta(hours=2), schedules=HOURLY)
    assert told.mailed == ["harvest:cs.CL"] and len(smtp.messages) == 1


def test_pruning_keeps_recent_runs_and_each_jobs_last_success(store: Engine) -> None:
    clock = Clock(T0)
    _succeed(store, "harvest:cs.CL", clock)
    clock.now += timedelta(hours=1)
    _fail(store, "harvest:cs.CL", clock)
    _succeed(store, "index", clock)
    clock.now += timedelta(hours=1)
    _succeed(store, "index", clock)
    assert prune_runs(store, T0 + timedelta(days=60)) == 2
    kept = {(s.job, s.last.outcome) for s in last_runs(store)}
    assert kept == {("harvest:cs.CL", OK), ("index", OK)}
    assert late_jobs(store, HOURLY, T0 + timedelta(minutes=59)) == []  # lateness unchanged
