from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import Engine, update

from broadsheet.config import Settings
from broadsheet.db.schema import subscribers
from broadsheet.digest.subscriptions import Frequency, add_subscriber
from broadsheet.digest.worker import Worker
from broadsheet.papers.record import FeedPlacement, Paper
from broadsheet.papers.repository import upsert_papers
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
