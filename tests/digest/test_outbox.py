"""Digests through the outbox to a real SMTP server: once each, retried, recorded, resumable."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime

import pytest
from sqlalchemy import Engine, select, update

from broadsheet.config import Settings
from broadsheet.db.schema import digest_outbox, subscribers
from broadsheet.digest import tokens
from broadsheet.digest.mailer import Mailer
from broadsheet.digest.outbox import send_digests
from broadsheet.digest.subscriptions import (
    Frequency,
    Status,
    add_subscriber,
    set_topics,
    unsubscribe,
)
from broadsheet.papers.record import FeedPlacement, Paper
from broadsheet.papers.repository import upsert_papers
from databases import ON_POSTGRES
from smtp_sink import SmtpSink

DAY = date(2024, 1, 10)
SECRET = "digest-test-secret"


def _paper(paper_id: str, title: str, upvotes: int, day: date = DAY) -> Paper:
    return Paper(
        id=paper_id,
        title_raw=title,
        abstract_raw=f"An abstract about {title.lower()}.",
        source="test",
        published_at=datetime(2024, 1, 9, 12),
        upvotes=upvotes,
        feed=FeedPlacement(day=day, source="test"),
    )


@pytest.fixture
def digest_store(store: Engine) -> Engine:
    with store.begin() as connection:
        upsert_papers(
            connection,
            [
                _paper("2401.00001", "Graph neural networks for molecules", 50),
                _paper("2401.00002", "Diffusion models for audio", 30),
                _paper("2401.00003", "A survey of protein folding", 10),
            ],
        )
    return store


def _settings(smtp: SmtpSink) -> Settings:
    return Settings(
        smtp_host=smtp.host, smtp_port=smtp.port, smtp_timeout=5, base_url="http://digest.test"
    )


def _confirmed(store: Engine, *emails: str, frequency: Frequency = Frequency.daily) -> None:
    for email in emails:
        add_subscriber(store, email, frequency)
    with store.begin() as connection:
        connection.execute(
            update(subscribers)
            .where(subscribers.c.email.in_(emails))
            .values(status=Status.confirmed)
        )


def _send(store: Engine, smtp: SmtpSink, day: date = DAY, **options):
    options.setdefault("sleep", lambda seconds: None)
    return send_digests(store, _settings(smtp), SECRET, Frequency.daily, day, **options)


def test_each_confirmed_subscriber_gets_one_digest_with_both_parts_and_headers(
    digest_store: Engine, smtp: SmtpSink
) -> None:
    _confirmed(digest_store, "a@example.org", "b@example.org")
    add_subscriber(digest_store, "pending@example.org")  # never confirmed: nothing sent
    summary = _send(digest_store, smtp)
    assert (summary.queued, summary.sent, summary.failed) == (2, 2, 0)
    assert sorted(m["To"] for m in smtp.messages) == ["a@example.org", "b@example.org"]
    mail = smtp.to("a@example.org")[0]
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    titles = ["Graph neural networks", "Diffusion models", "A survey of protein"]
    assert [text.index(t) for t in titles] == sorted(text.index(t) for t in titles)  # trending
    assert all(t in html for t in titles) and 'style="' in html
    assert "http://digest.test/papers/2401.00001" in text
    # each paper can be saved from the mail: the link opens the paper's save panel
    assert 'href="http://digest.test/papers/2401.00001?save=1#save"' in html
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe_link = mail["List-Unsubscribe"].strip().strip("<>")
    assert unsubscribe_link.startswith("http://digest.test/unsubscribe?token=")
    assert mail["Message-ID"] == f"<digest-1-{DAY.isoformat()}@digest.test>"

    again = _send(digest_store, smtp)  # a rerun sends nothing twice
    assert (again.queued, again.sent) == (0, 0)
    assert len(smtp.messages) == 2


def test_one_click_unsubscribe_stops_the_next_digest(digest_store: Engine, smtp: SmtpSink) -> None:
    from urllib.parse import parse_qs, urlsplit

    _confirmed(digest_store, "a@example.org")
    _send(digest_store, smtp)
    link = smtp.messages[0]["List-Unsubscribe"].strip().strip("<>")
    token = parse_qs(urlsplit(link).query)["token"][0]
    unsubscribe(digest_store, SECRET, token)
    with digest_store.begin() as connection:
        upsert_papers(connection, [_paper("2401.00004", "Next day paper", 5, date(2024, 1, 11))])
    summary = _send(digest_store, smtp, date(2024, 1, 11))
    assert summary.sent == 0 and len(smtp.messages) == 1


class Crash(BaseException):
    """The sender process dying (not an error the sender could handle)."""


class CrashingMailer(Mailer):
    def __init__(self, settings: Settings, crash_before: int):
        super().__init__(settings)
        self.sent, self.crash_before = 0, crash_before

    def send(self, message) -> None:
        if self.sent + 1 == self.crash_before:
            raise Crash()
        super().send(message)
        self.sent += 1


def test_a_crash_halfway_then_a_rerun_delivers_each_digest_exactly_once(
    digest_store: Engine, smtp: SmtpSink
) -> None:
    emails = [f"reader{i}@example.org" for i in range(6)]
    _confirmed(digest_store, *emails)
    with pytest.raises(Crash):
        _send(digest_store, smtp, mailer=CrashingMailer(_settings(smtp), crash_before=4))
    assert len(smtp.messages) == 3
    summary = _send(digest_store, smtp)
    assert (summary.queued, summary.sent) == (0, 3)
    assert sorted(m["To"] for m in smtp.messages) == sorted(emails)  # each once


def test_451_is_retried_with_back_off_and_then_delivered(
    digest_store: Engine, smtp: SmtpSink
) -> None:
    _confirmed(digest_store, "a@example.org")
    smtp.replies.append("451 4.7.1 Greylisted, try again")
    waits: list[float] = []
    summary = _send(digest_store, smtp, sleep=waits.append)
    assert (summary.sent, summary.retried, summary.failed) == (1, 1, 0)
    assert waits == [2.0]
    assert len(smtp.to("a@example.org")) == 1
    with digest_store.connect() as connection:
        row = connection.execute(select(digest_outbox)).one()
    assert (row.status, row.attempts) == ("sent", 1)


def test_550_is_recorded_not_retried_and_repeated_failures_pause_the_address(
    digest_store: Engine, smtp: SmtpSink
) -> None:
    _confirmed(digest_store, "gone@example.org")
    for offset in range(3):
        day = date(2024, 1, 10 + offset)
        if offset:
            with digest_store.begin() as connection:
                upsert_papers(connection, [_paper(f"2401.0010{offset}", f"Paper {offset}", 1, day)])
        smtp.replies.append("550 5.1.1 No such user")
        summary = _send(digest_store, smtp, day)
        assert (summary.sent, summary.failed, summary.retried) == (0, 1, 0)
        assert _send(digest_store, smtp, day).sent == 0  # a failed row is not tried again
    with digest_store.connect() as connection:
        rows = connection.execute(select(digest_outbox.c.status, digest_outbox.c.last_error)).all()
        status, failures = connection.execute(
            select(subscribers.c.status, subscribers.c.failure_count)
        ).one()
    assert [r.status for r in rows] == ["failed"] * 3
    assert "550 5.1.1 No such user" in rows[0].last_error
    assert (status, failures) == ("paused", 3)
    assert smtp.messages == []


def test_papers_already_sent_are_not_repeated(digest_store: Engine, smtp: SmtpSink) -> None:
    _confirmed(digest_store, "a@example.org")
    _send(digest_store, smtp)
    with digest_store.begin() as connection:  # one paper returns to the feed the next day
        upsert_papers(
            connection,
            [
                _paper("2401.00001", "Graph neural networks for molecules", 50, date(2024, 1, 11)),
                _paper("2401.00005", "Fresh paper", 1, date(2024, 1, 11)),
            ],
        )
    _send(digest_store, smtp, date(2024, 1, 11))
    second = smtp.messages[1].get_body(("plain",)).get_content()
    assert "Fresh paper" in second and "Graph neural networks" not in second


def test_topics_add_a_matching_section(
    digest_store: Engine, smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    _confirmed(digest_store, "a@example.org")
    saved = set_topics(digest_store, "a@example.org", ["protein folding", " ", "protein folding"])
    assert saved.topics == ("protein folding",)
    # trending shows only the top paper; the topic finds the survey below it
    monkeypatch.setattr("broadsheet.digest.compose.TRENDING", 1)
    _send(digest_store, smtp)
    text = smtp.messages[0].get_body(("plain",)).get_content()
    assert "MATCHING “PROTEIN FOLDING”" in text
    assert "A survey of protein folding" in text
    assert "matches your topic “protein folding”" in text
    # each paper says when it came out: a topic's matches may be days old
    assert "▲ 10 · 9 Jan 2024  A survey of protein folding" in text
    html = smtp.messages[0].get_body(("html",)).get_content()
    assert "▲ 10 · 9 Jan 2024" in html


def test_tokens_in_digests_are_unsubscribe_tokens(digest_store: Engine, smtp: SmtpSink) -> None:
    from urllib.parse import parse_qs, urlsplit

    _confirmed(digest_store, "a@example.org")
    _send(digest_store, smtp)
    link = smtp.messages[0]["List-Unsubscribe"].strip().strip("<>")
    token = parse_qs(urlsplit(link).query)["token"][0]
    assert tokens.read_token(SECRET, tokens.UNSUBSCRIBE, token).is_for("A@example.org")
    assert not tokens.read_token(SECRET, tokens.UNSUBSCRIBE, token).is_for("b@example.org")
    with pytest.raises(tokens.InvalidLink):
        tokens.read_token(SECRET, tokens.CONFIRM, token)


class _SlowMailer(Mailer):
    """A real mailer whose sends take a while, as over a distant mail server."""

    def send(self, message, recipient=None) -> None:
        time.sleep(0.02)
        super().send(message, recipient)


@pytest.mark.skipif(not ON_POSTGRES, reason="on SQLite one sender runs at a time")
def test_two_senders_at_once_send_every_digest_exactly_once(
    digest_store: Engine, smtp: SmtpSink
) -> None:
    emails = [f"reader{i:02d}@example.org" for i in range(24)]
    _confirmed(digest_store, *emails)
    start = threading.Barrier(2)

    def sender(_: int):
        with _SlowMailer(_settings(smtp)) as mailer:
            start.wait()
            return _send(digest_store, smtp, mailer=mailer)

    with ThreadPoolExecutor(max_workers=2) as pool:
        summaries = list(pool.map(sender, range(2)))
    assert sorted(m["To"] for m in smtp.messages) == emails
    assert sum(s.sent for s in summaries) == len(emails)
    assert sum(s.queued for s in summaries) == len(emails)  # each row queued by one of them
    with digest_store.connect() as connection:
        statuses = connection.execute(select(digest_outbox.c.status)).scalars().all()
    assert statuses == ["sent"] * len(emails)


def test_a_member_gets_new_papers_by_whom_they_follow(
    digest_store: Engine, smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    from broadsheet.community.accounts import create_member
    from broadsheet.community.follows import Kind, follow

    with digest_store.begin() as connection:
        upsert_papers(
            connection,
            [
                Paper(
                    id="2401.00009",
                    title_raw="Followed author's quiet paper",
                    abstract_raw="Nobody upvoted this yet.",
                    source="test",
                    authors=["Grace Hopper", "Someone Else"],
                    published_at=datetime(2024, 1, 8, 12),
                    upvotes=0,
                ),
                Paper(
                    id="2312.00009",
                    title_raw="An old paper by her",
                    abstract_raw="From before the digest's window.",
                    source="test",
                    authors=["Grace Hopper"],
                    published_at=datetime(2023, 12, 1, 12),
                ),
            ],
        )
    reader = create_member(digest_store, "reader", "long enough password")
    follow(digest_store, reader, Kind.author, "grace hopper")
    _confirmed(digest_store, "r@example.org")
    with digest_store.begin() as connection:
        connection.execute(
            update(subscribers)
            .where(subscribers.c.email == "r@example.org")
            .values(user_id=reader.id)
        )
    monkeypatch.setattr("broadsheet.digest.compose.TRENDING", 1)
    _send(digest_store, smtp)
    text = smtp.messages[0].get_body(("plain",)).get_content()
    assert "FROM PEOPLE YOU FOLLOW" in text
    assert "Followed author's quiet paper" in text
    assert "by Grace Hopper, whom you follow" in text
    assert "An old paper by her" not in text
