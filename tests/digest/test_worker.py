from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta

from sqlalchemy import Engine, func, select, update

from broadsheet.community.accounts import create_member
from broadsheet.config import Settings
from broadsheet.db.schema import job_alerts, job_runs, papers, subscribers, users
from broadsheet.digest.subscriptions import Frequency, add_subscriber
from broadsheet.digest.worker import Worker
from broadsheet.ops.jobs import last_runs, runs
from broadsheet.papers.record import FeedPlacement, Paper
from broadsheet.papers.repository import upsert_papers
from broadsheet.search.embed import DEFAULT_MODEL
from broadsheet.search.vectors import coverage
from fake_arxiv import FakeArxiv, fake_arxiv
from helpers import run_env
from smtp_sink import SmtpSink


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _worker(store: Engine, smtp: SmtpSink, clock: Clock, **settings) -> tuple[Worker, list]:
    harvests: list[dict] = []

    def harvest(engine, **options):
        harvests.append(options)
        return "ok"

    config = Settings(smtp_host=smtp.host, smtp_port=smtp.port, digest_hour=7, **settings)
    worker = Worker(store, config, "secret", clock=clock, harvest=harvest, report=lambda _: None)
    return worker, harvests


def _with_paper_and_subscriber(store: Engine, day: date, frequency=Frequency.daily) -> None:
    with store.begin() as connection:
        upsert_papers(
            connection,
            [
                Paper(
                    id="2401.00001", title_raw="A paper", abstract_raw="Text.", source="test",
                    upvotes=3, feed=FeedPlacement(day=day, source="test"),
                )
            ],
        )  # fmt: skip
    add_subscriber(store, "reader@example.org", frequency)
    with store.begin() as connection:
        connection.execute(update(subscribers).values(status="confirmed"))


def test_daily_digest_goes_out_at_the_hour_once(store: Engine, smtp: SmtpSink) -> None:
    _with_paper_and_subscriber(store, date(2024, 1, 9))
    clock = Clock(datetime(2024, 1, 10, 6, 59))
    worker, _ = _worker(store, smtp, clock)
    worker.tick()
    assert smtp.messages == []  # before the hour
    clock.now = datetime(2024, 1, 10, 7, 0)
    worker.tick()
    assert len(smtp.messages) == 1  # yesterday's papers
    for minutes in (1, 61, 125):
        clock.now = datetime(2024, 1, 10, 7, 0) + timedelta(minutes=minutes)
        worker.tick()
    assert len(smtp.messages) == 1  # later sweeps send nothing twice


def test_weekly_digest_goes_out_on_its_day(store: Engine, smtp: SmtpSink) -> None:
    _with_paper_and_subscriber(store, date(2024, 1, 3), Frequency.weekly)  # week of Jan 1
    clock = Clock(datetime(2024, 1, 7, 8, 0))  # Sunday: not the day
    worker, _ = _worker(store, smtp, clock, digest_weekday=0)
    worker.tick()
    assert smtp.messages == []
    clock.now = datetime(2024, 1, 8, 7, 30)  # Monday: last week's digest
    worker.tick()
    assert [m["Subject"] for m in smtp.messages] == [
        "Broadsheet: trending papers, Week of January 1, 2024"
    ]


def test_harvests_each_category_every_interval(store: Engine, smtp: SmtpSink) -> None:
    clock = Clock(datetime(2024, 1, 10, 1, 0))
    worker, harvests = _worker(
        store, smtp, clock, harvest_categories=["cs.LG", "cs.CL"], harvest_every_hours=6
    )
    worker.tick()
    clock.now += timedelta(hours=5)
    worker.tick()
    clock.now += timedelta(hours=1)
    worker.tick()
    assert [h["category"] for h in harvests] == ["cs.LG", "cs.CL", "cs.LG", "cs.CL"]
    assert harvests[0]["since"] == date(2024, 1, 8)


def test_a_later_sweep_delivers_to_subscribers_confirmed_since(
    store: Engine, smtp: SmtpSink
) -> None:
    _with_paper_and_subscriber(store, date(2024, 1, 9))
    clock = Clock(datetime(2024, 1, 10, 7, 0))
    worker, _ = _worker(store, smtp, clock)
    worker.tick()
    add_subscriber(store, "late@example.org")
    with store.begin() as connection:
        connection.execute(update(subscribers).values(status="confirmed"))
    clock.now += timedelta(hours=1)
    worker.tick()
    assert sorted(m["To"] for m in smtp.messages) == ["late@example.org", "reader@example.org"]


def _harvesting_worker(
    store: Engine, smtp: SmtpSink, arxiv: FakeArxiv, clock: Clock, name: str = "w", **settings
) -> Worker:
    """A worker harvesting cs.CL from the fake arXiv, with the real index and mail."""
    config = Settings(
        smtp_host=smtp.host, smtp_port=smtp.port, harvest_categories=["cs.CL"],
        arxiv_api_url=arxiv.url, arxiv_api_delay=0, arxiv_api_retries=0,
        **settings,
    )  # fmt: skip
    return Worker(store, config, "secret", clock=clock, report=lambda _: None, name=name)


def _runs_of(store: Engine) -> dict[str, list[str]]:
    with store.connect() as connection:
        rows = connection.execute(
            select(job_runs.c.job, job_runs.c.outcome).order_by(job_runs.c.id)
        ).all()
    found: dict[str, list[str]] = {}
    for job, outcome in rows:
        found.setdefault(job, []).append(outcome)
    return found


def test_a_harvest_is_followed_by_the_index_that_gives_new_papers_vectors(
    store: Engine, smtp: SmtpSink
) -> None:
    clock = Clock(datetime(2024, 1, 10, 1, 0))
    with fake_arxiv() as arxiv:
        worker = _harvesting_worker(store, smtp, arxiv, clock, index_every_minutes=0)
        worker.tick()
    with store.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(papers)).scalar_one()
        assert stored == len(arxiv.entries) > 0
        assert coverage(connection, DEFAULT_MODEL) == (stored, stored)
    (harvest,) = runs(store, "harvest:cs.CL")
    assert harvest.outcome == "ok" and harvest.worker == "w"
    assert harvest.counts["added"] == stored and harvest.counts["requests"] == 1
    (index,) = runs(store, "index")
    assert index.outcome == "ok" and index.counts["embedded"] == stored
    assert index.started_at == clock.now and index.finished_at == clock.now
    assert {s.job for s in last_runs(store)} == {"confirmations", "harvest:cs.CL", "index"}


def test_papers_imported_meanwhile_get_vectors_at_the_next_index_run(
    store: Engine, smtp: SmtpSink
) -> None:
    clock = Clock(datetime(2024, 1, 10, 1, 0))
    config = Settings(smtp_host=smtp.host, smtp_port=smtp.port, index_every_minutes=30)
    worker = Worker(store, config, "secret", clock=clock, report=lambda _: None)
    worker.tick()
    _with_paper_and_subscriber(store, date(2024, 1, 9))  # as `broadsheet import` adds them
    clock.now += timedelta(minutes=29)
    worker.tick()
    with store.connect() as connection:
        assert coverage(connection, DEFAULT_MODEL) == (0, 1)
    clock.now += timedelta(minutes=1)
    worker.tick()
    with store.connect() as connection:
        assert coverage(connection, DEFAULT_MODEL) == (1, 1)
    assert [r.counts["embedded"] for r in runs(store, "index")] == [1, 0]


def _verified_admin(store: Engine) -> None:
    admin = create_member(store, "ada", "long enough password", is_admin=True)
    with store.begin() as connection:
        connection.execute(
            update(users)
            .where(users.c.id == admin.id)
            .values(email="ada@example.org", email_verified_at=datetime(2024, 1, 1))
        )


def test_a_failed_harvest_is_late_and_mailed_to_the_admins_once(
    store: Engine, smtp: SmtpSink
) -> None:
    _verified_admin(store)
    start = datetime(2024, 1, 10, 1, 0)
    clock = Clock(start)
    with fake_arxiv() as arxiv:
        arxiv.fail_with = 503
        worker = _harvesting_worker(
            store, smtp, arxiv, clock, harvest_every_hours=6, job_grace_minutes=60
        )
        for hours in (0, 6):
            clock.now = start + timedelta(hours=hours)
            worker.tick()
        assert smtp.messages == []  # failed, but not late yet
        failed = runs(store, "harvest:cs.CL")[0]
        assert failed.outcome == "failed" and "HTTP 503" in failed.error
        assert _runs_of(store)["confirmations"][-1] == "ok"  # the other jobs went on
        clock.now = start + timedelta(hours=7)  # 6 h since the first run, and an hour's grace
        worker.tick()
        (mail,) = smtp.messages
        assert mail["To"] == "ada@example.org"
        assert mail["Subject"] == "Broadsheet: harvest:cs.CL is late"
        assert "HTTP 503" in mail.get_content()
        for minutes in (1, 2, 60, 300):  # later ticks of the same episode, harvests failing
            clock.now = start + timedelta(hours=7, minutes=minutes)
            worker.tick()
        assert len(smtp.messages) == 1

        arxiv.fail_with = None  # arXiv is back: the next harvest ends the episode
        clock.now = start + timedelta(hours=18)
        worker.tick()
    assert runs(store, "harvest:cs.CL")[0].outcome == "ok"
    with store.connect() as connection:
        assert connection.execute(select(func.count()).select_from(job_alerts)).scalar() == 0
    assert len(smtp.messages) == 1


def test_a_failed_harvest_does_not_stop_the_other_jobs(store: Engine, smtp: SmtpSink) -> None:
    _with_paper_and_subscriber(store, date(2024, 1, 9))
    done: list[str] = []

    def harvest(engine, category: str, **options) -> dict[str, int]:
        if category == "cs.LG":
            raise ConnectionResetError("connection reset by peer")
        done.append(category)
        return {"added": 0}

    config = Settings(
        smtp_host=smtp.host, smtp_port=smtp.port, harvest_categories=["cs.LG", "cs.CL"],
        index_every_minutes=0,
    )  # fmt: skip
    clock = Clock(datetime(2024, 1, 10, 7, 0))
    Worker(store, config, "secret", clock=clock, harvest=harvest, report=lambda _: None).tick()
    assert done == ["cs.CL"]
    assert len(smtp.messages) == 1  # the digest went out
    found = _runs_of(store)
    assert found["harvest:cs.LG"] == ["failed"] and found["harvest:cs.CL"] == ["ok"]
    assert found["index"] == ["ok"] and found["digest:daily"] == ["ok"]
    error = runs(store, "harvest:cs.LG")[0].error
    assert error == "ConnectionResetError: connection reset by peer"


def test_two_workers_at_once_run_each_job_once(store: Engine, smtp: SmtpSink) -> None:
    _with_paper_and_subscriber(store, date(2024, 1, 9))
    clock = Clock(datetime(2024, 1, 10, 7, 30))
    with fake_arxiv() as arxiv:
        arxiv.delay = 1.0  # the first worker's harvest is still running when the second looks
        workers = [
            _harvesting_worker(store, smtp, arxiv, clock, name=name, index_every_minutes=0)
            for name in ("a", "b")
        ]
        together = threading.Barrier(2)

        def tick(worker: Worker) -> None:
            together.wait(10)
            worker.tick()

        threads = [threading.Thread(target=tick, args=(w,)) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        clock.now += timedelta(minutes=10)  # and again, later: nothing is due yet
        for worker in workers:
            worker.tick()
    harvests = [r for r in arxiv.requests if "search_query" in r]
    assert len(harvests) == 1
    found = _runs_of(store)
    assert found["harvest:cs.CL"] == ["ok"] and found["digest:daily"] == ["ok"]
    assert found["index"] == ["ok"]
    assert len(smtp.messages) == 1  # one digest


def test_two_worker_processes_harvest_and_index_once(
    store: Engine, database_url: str, smtp: SmtpSink
) -> None:
    with fake_arxiv() as arxiv:
        arxiv.delay = 2.0  # the harvest takes a while: the other process looks meanwhile
        env = run_env(database_url) | {
            "BROADSHEET_HARVEST_CATEGORIES": json.dumps(["cs.CL"]),
            "BROADSHEET_ARXIV_API_URL": arxiv.url,
            "BROADSHEET_ARXIV_API_DELAY": "0",
            "BROADSHEET_ARXIV_API_RETRIES": "0",
            "BROADSHEET_INDEX_EVERY_MINUTES": "0",
            "BROADSHEET_SMTP_HOST": smtp.host,
            "BROADSHEET_SMTP_PORT": str(smtp.port),
        }
        command = [sys.executable, "-m", "broadsheet.cli", "worker"]
        workers = [
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for _ in range(2)
        ]
        try:
            deadline = time.monotonic() + 120
            while True:  # until both have ticked and the harvest and its index are done
                with store.connect() as connection:
                    rows = connection.execute(
                        select(job_runs.c.job, job_runs.c.outcome, job_runs.c.worker)
                    ).all()
                ticked = {r.worker for r in rows if r.job == "confirmations"}
                done = {r.job for r in rows if r.outcome != "running"}
                if len(ticked) == 2 and {"harvest:cs.CL", "index"} <= done:
                    break
                for worker in workers:
                    assert worker.poll() is None, worker.communicate()[0].decode()
                assert time.monotonic() < deadline, rows
                time.sleep(0.2)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGINT)
            for worker in workers:
                worker.communicate(timeout=60)
    assert len([r for r in arxiv.requests if "search_query" in r]) == 1
    found = _runs_of(store)
    assert found["harvest:cs.CL"] == ["ok"] and found["index"] == ["ok"]
    (index,) = runs(store, "index")
    assert index.counts["embedded"] == len(arxiv.entries)
