"""Killing a real ``broadsheet digest send`` halfway, then rerunning it: each digest once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine, update

from broadsheet.db.schema import subscribers
from broadsheet.digest.subscriptions import add_subscriber
from broadsheet.papers.record import FeedPlacement, Paper
from broadsheet.papers.repository import upsert_papers
from helpers import run_env
from smtp_sink import SmtpSink, smtp_sink

DAY = date(2024, 1, 10)


@dataclass
class KillingSink(SmtpSink):
    """Kills the sending process when it starts mail number ``kill_at`` (the ones before are
    accepted, and the sender has recorded them before it starts the next)."""

    victim: int | None = None
    kill_at: int = 0
    started: int = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.started += 1
        if self.victim is not None and self.started == self.kill_at:
            os.kill(self.victim, signal.SIGKILL)
            return "451 4.3.0 Going away"
        envelope.mail_from = address
        return "250 OK"


def _send(database_url: str, sink: SmtpSink) -> subprocess.Popen:
    env = run_env(database_url) | {
        "BROADSHEET_SMTP_HOST": sink.host,
        "BROADSHEET_SMTP_PORT": str(sink.port),
    }
    command = [sys.executable, "-m", "broadsheet.cli", "digest", "send", "--date", str(DAY)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_kill_halfway_then_rerun_delivers_every_digest_exactly_once(
    store: Engine, database_url: str
) -> None:
    with store.begin() as connection:
        upsert_papers(
            connection,
            [
                Paper(id="2401.00001", title_raw="A paper", abstract_raw="Text.", source="t",
                      upvotes=2, feed=FeedPlacement(day=DAY, source="t"))
            ],
        )  # fmt: skip
    emails = [f"reader{i}@example.org" for i in range(8)]
    for email in emails:
        add_subscriber(store, email)
    with store.begin() as connection:
        connection.execute(update(subscribers).values(status="confirmed"))

    with smtp_sink(KillingSink(kill_at=4)) as sink:
        first = _send(database_url, sink)
        sink.victim = first.pid
        first.wait(120)
        assert first.returncode == -signal.SIGKILL
        assert len(sink.messages) == 3

        sink.victim = None
        second = _send(database_url, sink)
        output = second.communicate(timeout=120)[0].decode()
        assert second.returncode == 0, output
    recipients = sorted(m["To"] for m in sink.messages)
    assert recipients == sorted(emails)  # all eight, none twice
