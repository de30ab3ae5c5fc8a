"""Subscriptions as the store sees them: one spelling per address, links, claims that lapse."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert, select, update

from broadsheet.community.accounts import create_member
from broadsheet.config import Settings
from broadsheet.db.schema import digest_outbox, subscribers
from broadsheet.digest.outbox import send_digests
from broadsheet.digest.subscriptions import (
    AddressTaken,
    Frequency,
    InvalidEmail,
    Requester,
    claim_owed_links,
    link_mailed,
    link_not_sent,
    mail_is_configured,
    normalise_email,
    request_subscription,
    save_member_subscription,
)
from broadsheet.papers.record import FeedPlacement, Paper
from broadsheet.papers.repository import upsert_papers
from databases import ON_POSTGRES
from smtp_sink import SmtpSink

SETTINGS = Settings(
    confirm_link_days=7, confirmation_cooldown_minutes=15, smtp_host="127.0.0.1"
)  # a site whose mail is set up
NO_MAIL = Settings(confirm_link_days=7, confirmation_cooldown_minutes=15)
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


def _rows(store: Engine) -> list:
    with store.connect() as connection:
        return connection.execute(select(subscribers).order_by(subscribers.c.id)).all()


def test_mail_is_configured_only_once_its_server_is_named() -> None:
    assert not mail_is_configured(NO_MAIL)
    assert mail_is_configured(SETTINGS)


def test_without_mail_an_address_is_kept_with_no_link_and_no_limit_counted(
    store: Engine,
) -> None:
    for minute in range(5):  # more than the per-address limit of mails
        outcome = request_subscription(
            store, NO_MAIL, "reader@example.org", Frequency.daily, CLIENT,
            NOW + timedelta(minutes=minute),
        )  # fmt: skip
        assert outcome.link is None and outcome.mail_waiting
    [row] = _rows(store)
    assert (row.status, row.confirmation_nonce, row.confirmation_sent_at) == ("pending", None, None)

    [link] = claim_owed_links(store, SETTINGS)
    assert (link.address, link.subscriber.id) == ("reader@example.org", row.id)
    assert list(claim_owed_links(store, SETTINGS)) == []  # owed once
    assert list(claim_owed_links(store, NO_MAIL)) == []


def test_owed_links_stay_within_the_limit_per_address(store: Engine) -> None:
    request_subscription(store, NO_MAIL, "reader@example.org", Frequency.daily, CLIENT, NOW)
    for _ in range(3):  # mailing kept failing: each round counts
        [link] = claim_owed_links(store, SETTINGS)
        link_not_sent(store, link)
    assert list(claim_owed_links(store, SETTINGS)) == []


def _row_of(store: Engine, address: str):
    with store.connect() as connection:
        return connection.execute(select(subscribers).where(subscribers.c.email == address)).one()


def test_an_owed_link_is_recorded_as_mailed_only_once_the_server_took_it(store: Engine) -> None:
    request_subscription(store, NO_MAIL, "reader@example.org", Frequency.daily, CLIENT, NOW)
    [link] = claim_owed_links(store, SETTINGS)
    held = _row_of(store, "reader@example.org")
    assert held.confirmation_sent_at is None  # claimed, not mailed
    assert held.confirmation_nonce == link.claim != link.nonce
    assert link_mailed(store, link, NOW)
    mailed = _row_of(store, "reader@example.org")
    assert (mailed.confirmation_nonce, mailed.confirmation_sent_at) == (link.nonce, NOW)
    assert not link_mailed(store, link, NOW)  # once
    assert list(claim_owed_links(store, SETTINGS, lease=timedelta(0))) == []


def test_a_claim_whose_sender_died_is_taken_again_with_the_same_link(store: Engine) -> None:
    request_subscription(store, NO_MAIL, "reader@example.org", Frequency.daily, CLIENT, NOW)
    [held] = claim_owed_links(store, SETTINGS)  # and its sender dies with it
    assert list(claim_owed_links(store, SETTINGS)) == []  # within the lease: still its own
    [again] = claim_owed_links(store, SETTINGS, lease=timedelta(seconds=-1))  # the lease ends
    assert again.nonce == held.nonce  # a mail the dead sender got out still works
    assert again.claim != held.claim
    assert not link_mailed(store, held, NOW)  # the first claim is gone
    assert link_mailed(store, again, NOW)


def test_a_subscription_that_changed_under_a_claim_keeps_its_new_state(store: Engine) -> None:
    request_subscription(store, NO_MAIL, "reader@example.org", Frequency.daily, CLIENT, NOW)
    [link] = claim_owed_links(store, SETTINGS)
    later = NOW + timedelta(minutes=1)
    with store.begin() as connection:  # unsubscribed meanwhile (a link mailed before)
        connection.execute(
            update(subscribers).values(status="unsubscribed", confirmation_nonce=None)
        )
    assert not link_mailed(store, link, later)
    row = _row_of(store, "reader@example.org")
    assert (row.status, row.confirmation_nonce, row.confirmation_sent_at) == (
        "unsubscribed", None, None,
    )  # fmt: skip


def test_asking_again_while_a_link_is_being_mailed_sends_no_second(store: Engine) -> None:
    request_subscription(store, NO_MAIL, "reader@example.org", Frequency.daily, CLIENT, NOW)
    [link] = claim_owed_links(store, SETTINGS)
    asked = request_subscription(
        store, SETTINGS, "reader@example.org", Frequency.daily, CLIENT, datetime.now()
    )
    assert asked.link is None and asked.link_sent_recently
    assert link_mailed(store, link, NOW)
    assert _row_of(store, "reader@example.org").confirmation_nonce == link.nonce


@pytest.mark.parametrize("second", ["Ann@X.org", "ANN@x.org", "aNn@X.ORG"])
def test_an_address_in_another_case_finds_the_same_row(store: Engine, second: str) -> None:
    first = request_subscription(store, SETTINGS, "ann@x.org", Frequency.daily, CLIENT, NOW)
    again = request_subscription(
        store, SETTINGS, second, Frequency.weekly, CLIENT, NOW + timedelta(minutes=30)
    )
    assert again.subscriber.id == first.subscriber.id
    assert again.link is not None and again.link.address == "ann@x.org"
    [row] = _rows(store)
    assert (row.email, row.pending_email, row.frequency) == ("ann@x.org", None, "weekly")


def test_a_member_cannot_take_another_case_of_an_address_with_a_live_link(store: Engine) -> None:
    request_subscription(store, SETTINGS, "ann@x.org", Frequency.daily, CLIENT, NOW)
    ada = create_member(store, "ada", "long enough password")
    with pytest.raises(AddressTaken):
        save_member_subscription(
            store, SETTINGS, ada.id, "Ann@X.org", Frequency.weekly, [],
            Requester("192.0.2.9", ada.id), NOW + timedelta(hours=1),
        )  # fmt: skip
    assert len(_rows(store)) == 1


def test_owed_links_are_mailed_and_a_refused_address_is_not_tried_again(
    store: Engine, smtp: SmtpSink
) -> None:
    from broadsheet.digest.confirmation import send_unmailed_confirmations

    for address in ("gone@example.org", "reader@example.org", "other@example.org"):
        request_subscription(store, NO_MAIL, address, Frequency.daily, CLIENT, NOW)
    mailing = Settings(smtp_host=smtp.host, smtp_port=smtp.port)
    smtp.replies.append("550 5.1.1 No such user")  # for the first, gone@
    first = send_unmailed_confirmations(store, mailing, "secret", NOW)
    assert (first.sent, first.failed) == (2, 1)
    assert sorted(to for _, [to] in smtp.envelopes) == ["other@example.org", "reader@example.org"]
    smtp.replies.append("451 4.3.0 Try again later")
    request_subscription(store, NO_MAIL, "late@example.org", Frequency.daily, CLIENT, NOW)
    down = send_unmailed_confirmations(store, mailing, "secret", NOW)
    assert (down.sent, down.failed) == (0, 1)  # gone@ is not among them: refused for good
    again = send_unmailed_confirmations(store, mailing, "secret", NOW)
    assert (again.sent, again.failed) == (1, 0)
    assert smtp.envelopes[-1][1] == ["late@example.org"]


@pytest.mark.skipif(not ON_POSTGRES, reason="on SQLite one worker runs at a time")
def test_two_workers_at_once_mail_each_owed_link_once(store: Engine, smtp: SmtpSink) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from broadsheet.digest.confirmation import send_unmailed_confirmations

    addresses = [f"reader{i:02d}@example.org" for i in range(30)]
    for address in addresses:
        request_subscription(store, NO_MAIL, address, Frequency.daily, CLIENT, NOW)
    mailing = Settings(smtp_host=smtp.host, smtp_port=smtp.port)
    start = threading.Barrier(2)

    def worker(_: int):
        start.wait()
        return send_unmailed_confirmations(store, mailing, "secret", NOW)

    with ThreadPoolExecutor(max_workers=2) as pool:
        rounds = list(pool.map(worker, range(2)))
    assert sorted(to for _, [to] in smtp.envelopes) == addresses
    assert sum(r.sent for r in rounds) == len(addresses)
