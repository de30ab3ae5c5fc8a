"""Killing a real ``broadsheet digest send`` or ``broadsheet worker`` halfway, then running it
again: each digest, and each confirmation link, mailed once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from urllib.parse import unquote

from sqlalchemy import Engine, update

from broadsheet.config import Settings
from broadsheet.db.schema import subscribers
from broadsheet.digest.subscriptions import Status, add_subscriber, confirm
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


SMTP_TIMEOUT = 1.0  # seconds: a claim on a link lapses after ten of them (10 s)
SECRET = "a secret for signing the links in these mails"


def _worker(database_url: str, sink: SmtpSink) -> subprocess.Popen:
    env = run_env(database_url) | {
        "BROADSHEET_SMTP_HOST": sink.host,
        "BROADSHEET_SMTP_PORT": str(sink.port),
        "BROADSHEET_SMTP_TIMEOUT": str(SMTP_TIMEOUT),
        "BROADSHEET_SECRET_KEY": SECRET,
    }
    command = [sys.executable, "-m", "broadsheet.cli", "worker"]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _until(sink: SmtpSink, count: int, worker: subprocess.Popen, seconds: float = 60) -> None:
    """Wait for the sink to hold ``count`` mails, then a moment more for any extra one."""
    deadline = time.monotonic() + seconds
    while len(sink.messages) < count:
        assert worker.poll() is None, worker.communicate()[0].decode()
        assert time.monotonic() < deadline, f"{len(sink.messages)} mails of {count}"
        time.sleep(0.05)
    time.sleep(1)


def _stop(worker: subprocess.Popen) -> None:
    worker.send_signal(signal.SIGINT)  # Ctrl-C: the worker stops between ticks
    worker.communicate(timeout=30)


def test_a_worker_killed_mid_round_leaves_the_links_it_had_not_mailed_to_the_next(
    store: Engine, database_url: str
) -> None:
    emails = [f"reader{i:02d}@example.org" for i in range(12)]
    for email in emails:
        add_subscriber(store, email)  # kept while mail was off: each owed a confirmation link

    with smtp_sink(KillingSink(kill_at=4)) as sink:
        first = _worker(database_url, sink)
        sink.victim = first.pid
        first.wait(120)
        assert first.returncode == -signal.SIGKILL
        killed_at = time.monotonic()
        assert len(sink.messages) == 3
        sink.victim = None

        restarted = _worker(database_url, sink)
        # the eight it never reached; the fourth is still claimed by the killed worker
        _until(sink, 11, restarted)
        _stop(restarted)
        assert len(sink.messages) == 11

        time.sleep(max(0.0, killed_at + 10 * SMTP_TIMEOUT - time.monotonic()))
        later = _worker(database_url, sink)  # the dead worker's claim has lapsed: it is taken
        _until(sink, 12, later)
        _stop(later)
    recipients = sorted(m["To"] for m in sink.messages)
    assert recipients == emails  # every address once
    for message in sink.messages:  # and each mailed link is the one the store waits for
        token = unquote(re.search(r"token=(\S+)", message.get_body(("plain",)).get_content())[1])
        assert confirm(store, Settings(), SECRET, token).status == Status.confirmed
