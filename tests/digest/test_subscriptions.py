"""Subscriptions as the store sees them: one spelling per address, links, claims that lapse."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert, select

from broadsheet.community.accounts import create_member
from broadsheet.config import Settings
from broadsheet.db.schema import digest_outbox, subscribers
from broadsheet.digest.outbox import send_digests
from broadsheet.digest.subscriptions import (
    AddressTaken,
    Frequency,
    InvalidEmail,
    Requester,
    link_not_sent,
    normalise_email,
    request_subscription,
    save_member_subscription,
)
from broadsheet.papers.record import FeedPlacement, Paper
from broadsheet.papers.repository import upsert_papers
from smtp_sink import SmtpSink

SETTINGS = Settings(confirm_link_days=7, confirmation_cooldown_minutes=15)
NOW = datetime(2026, 1, 1, 12)
CLIENT = Requester("192.0.2.1")


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Reader@Example.ORG", "Reader@example.org"),
        ("  reader@example.org\n", "reader@example.org"),
        ("reader@BÜCHER.de", "reader@xn--bcher-kva.de"),
        ("reader@xn--bcher-kva.de", "reader@xn--bcher-kva.de"),
        ("reader@ｅxample.org", "reader@example.org"),  # a full-width letter in the domain
    ],
)
def test_one_spelling_per_address(typed: str, stored: str) -> None:
    assert normalise_email(typed) == stored


@pytest.mark.parametrize(
    "typed",
    [
        "victim@evil.example,root",
        "victim@example.org;root@example.org",
        "victim@example.org root@example.org",
        "Victim <victim@example.org>",
        "victim@example.org\r\nBcc: root@example.org",
        "vic\x00tim@example.org",
        "victim\x01@example.org",
        '"root@example.org"@example.org',
        "victim@[192.0.2.1]",
        "victim@localhost",
        "rüdiger@example.org",  # would need SMTPUTF8 from every relay on the way
        "a" * 310 + "@example.org",
        "",
    ],
)
def test_anything_but_one_plain_address_is_refused(typed: str) -> None:
    with pytest.raises(InvalidEmail):
        normalise_email(typed)


def _row(store: Engine, email: str):
    with store.connect() as connection:
        return connection.execute(select(subscribers).where(subscribers.c.email == email)).one()


def test_a_digest_goes_to_one_recipient_even_for_a_bad_stored_address(
    store: Engine, smtp: SmtpSink
) -> None:
    day = date(2024, 1, 10)
    with store.begin() as connection:
        upsert_papers(
            connection,
            [Paper(id="2401.00001", title_raw="P", abstract_raw="A", source="t",
                   feed=FeedPlacement(day=day, source="t"))],
        )  # fmt: skip
        for email in ("victim@evil.example,root", "reader@example.org"):
            connection.execute(
                insert(subscribers).values(
                    email=email, status="confirmed", frequency="daily", created_at=NOW
                )
            )
    settings = Settings(smtp_host=smtp.host, smtp_port=smtp.port)
    summary = send_digests(store, settings, "s", Frequency.daily, day, sleep=lambda _: None)
    assert (summary.sent, summary.failed) == (1, 1)
    assert [recipients for _, recipients in smtp.envelopes] == [["reader@example.org"]]
    with store.connect() as connection:
        error = connection.execute(
            select(digest_outbox.c.last_error).where(digest_outbox.c.status == "failed")
        ).scalar_one()
    assert "not an email address" in error


def test_a_link_that_was_not_delivered_does_not_hold_back_the_next(store: Engine) -> None:
    first = request_subscription(
        store, SETTINGS, "reader@example.org", Frequency.daily, CLIENT, NOW
    )
    link_not_sent(store, first.link)
    later = NOW + timedelta(minutes=1)
    second = request_subscription(
        store, SETTINGS, "reader@example.org", Frequency.daily, CLIENT, later
    )
    assert second.link is not None and second.link.nonce != first.link.nonce


def test_a_claim_its_member_never_proved_lapses_with_its_link(store: Engine) -> None:
    squatter = create_member(store, "mallory", "long enough password")
    asked = save_member_subscription(
        store, SETTINGS, squatter.id, "victim@example.org", Frequency.daily, ["spam"],
        Requester("192.0.2.9", squatter.id), NOW,
    )  # fmt: skip
    assert asked.link is not None

    soon = NOW + timedelta(days=1)
    held = request_subscription(
        store, SETTINGS, "victim@example.org", Frequency.weekly, CLIENT, soon
    )
    assert held.link is None and _row(store, "victim@example.org").user_id == squatter.id

    lapsed = NOW + timedelta(days=8)
    taken = request_subscription(
        store, SETTINGS, "victim@example.org", Frequency.weekly, CLIENT, lapsed
    )
    assert taken.link is not None
    row = _row(store, "victim@example.org")
    assert (row.user_id, row.status, row.frequency, row.topics) == (
        None, "pending", "weekly", [],
    )  # fmt: skip


def test_a_member_cannot_take_an_address_with_a_live_link(store: Engine) -> None:
    request_subscription(store, SETTINGS, "victim@example.org", Frequency.daily, CLIENT, NOW)
    ada = create_member(store, "ada", "long enough password")
    with pytest.raises(AddressTaken):
        save_member_subscription(
            store, SETTINGS, ada.id, "victim@example.org", Frequency.weekly, [],
            Requester("192.0.2.9", ada.id), NOW + timedelta(days=1),
        )  # fmt: skip
    row = _row(store, "victim@example.org")
    assert (row.user_id, row.frequency) == (None, "daily")
