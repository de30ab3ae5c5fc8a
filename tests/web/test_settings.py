"""A member's digest settings and the admins' list of failed digests."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from broadsheet.community.accounts import create_member
from broadsheet.config import Settings
from broadsheet.db.schema import subscribers, users
from broadsheet.digest.subscriptions import Frequency, add_subscriber
from smtp_sink import SmtpSink
from web.conftest import form_token, make_client

PASSWORD = "long enough password"


def _confirm_link(message) -> str:
    text = message.get_body(("plain",)).get_content()
    url = re.search(r"http://testserver/subscribe/confirm\?token=\S+", text).group(0)
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _victim(store: Engine, owner: str | None = None) -> int | None:
    """A confirmed weekly subscription to victim@example.org, a member's when ``owner``."""
    add_subscriber(store, "victim@example.org", Frequency.weekly)
    user_id = create_member(store, owner, PASSWORD).id if owner else None
    with store.begin() as connection:
        connection.execute(
            update(subscribers)
            .where(subscribers.c.email == "victim@example.org")
            .values(status="confirmed", topics=["victims"], user_id=user_id, confirmed_at=NOW)
        )
    return user_id


def _state(row) -> tuple:
    return (row.user_id, row.status, row.frequency, row.topics, row.pending_email)


def _sign_in(client: TestClient, username: str) -> None:
    token = form_token(client.get("/signin").text)
    client.post("/signin", data={"username": username, "password": PASSWORD, "csrf_token": token})


def _save(client: TestClient, **data: str):
    token = form_token(client.get("/settings").text)
    return client.post(
        "/settings/digest", data={"csrf_token": token, **data}, follow_redirects=False
    )


NOW = datetime(2026, 1, 1)


def _row(store: Engine, email: str):
    with store.connect() as connection:
        return connection.execute(select(subscribers).where(subscribers.c.email == email)).one()


def test_settings_need_an_account(client: TestClient) -> None:
    response = client.get("/settings", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/signin")


def test_a_member_subscribes_with_topics_and_confirms_by_mail(
    client: TestClient, store: Engine, smtp: SmtpSink
) -> None:
    member = create_member(store, "ada", PASSWORD)
    _sign_in(client, "ada")
    saved = _save(
        client, email="ada@example.org", frequency="weekly", topics="graphs\n\nproteins\n"
    )
    assert saved.status_code == 303
    row = _row(store, "ada@example.org")
    assert (row.user_id, row.status, row.frequency, row.topics) == (
        member.id, "pending", "weekly", ["graphs", "proteins"],
    )  # fmt: skip
    assert len(smtp.to("ada@example.org")) == 1  # the confirmation
    page = client.get("/settings?saved=1").text
    assert "waiting for confirmation" in page and "graphs\nproteins" in page

    with store.begin() as connection:
        connection.execute(update(subscribers).values(status="confirmed"))
    _save(client, email="ada@example.org", frequency="daily", topics="graphs")
    row = _row(store, "ada@example.org")
    assert (row.status, row.frequency, row.topics) == ("confirmed", "daily", ["graphs"])
    assert len(smtp.messages) == 1  # same address: no new confirmation

    token = form_token(client.get("/settings").text)
    client.post("/settings/digest/stop", data={"csrf_token": token})
    assert _row(store, "ada@example.org").status == "unsubscribed"


@pytest.mark.parametrize("owner", [None, "victor"])
def test_saving_someone_elses_address_without_a_subscription_changes_nothing(
    client: TestClient, store: Engine, smtp: SmtpSink, owner: str | None
) -> None:
    _victim(store, owner)
    before = _state(_row(store, "victim@example.org"))
    create_member(store, "mallory", PASSWORD)
    _sign_in(client, "mallory")
    for _ in range(5):
        page = _save(client, email="victim@example.org", frequency="daily", topics="spam")
        assert page.status_code == 422 and "already has a digest subscription" in page.text
    assert _state(_row(store, "victim@example.org")) == before
    assert smtp.messages == []


@pytest.mark.parametrize("owner", [None, "victor"])
def test_moving_to_someone_elses_address_leaves_their_subscription_alone(
    client: TestClient, store: Engine, smtp: SmtpSink, owner: str | None
) -> None:
    _victim(store, owner)
    before = _state(_row(store, "victim@example.org"))
    mallory = create_member(store, "mallory", PASSWORD)
    _sign_in(client, "mallory")
    _save(client, email="mallory@example.org")
    client.get(_confirm_link(smtp.messages[0]))
    for _ in range(5):
        assert _save(client, email="victim@example.org", topics="spam").status_code == 303
    assert _state(_row(store, "victim@example.org")) == before
    mine = _row(store, "mallory@example.org")
    assert (mine.user_id, mine.status, mine.pending_email) == (
        mallory.id, "confirmed", "victim@example.org",
    )  # fmt: skip
    assert len(smtp.to("victim@example.org")) == 1  # five saves, one mail: the cool-down
    assert "less than 15 minutes ago" in client.get("/settings?saved=1&wait=1").text
    assert "moves to victim@example.org once the link mailed there" in client.get("/settings").text


def test_a_member_moves_to_a_new_address_by_opening_its_link(
    client: TestClient, store: Engine, smtp: SmtpSink
) -> None:
    ada = create_member(store, "ada", PASSWORD)
    _sign_in(client, "ada")
    _save(client, email="ada@example.org", topics="graphs")
    client.get(_confirm_link(smtp.messages[0]))
    _save(client, email="ada@new.example.org", topics="graphs")
    row = _row(store, "ada@example.org")  # digests still go to the proven address
    assert (row.status, row.pending_email) == ("confirmed", "ada@new.example.org")
    [mail] = smtp.to("ada@new.example.org")
    assert "signed in to Broadsheet" in mail.get_body(("plain",)).get_content()
    moved = client.get(_confirm_link(mail))
    assert moved.status_code == 200 and "ada@new.example.org" in moved.text
    row = _row(store, "ada@new.example.org")
    assert (row.id, row.user_id, row.status, row.topics, row.pending_email) == (
        row.id, ada.id, "confirmed", ["graphs"], None,
    )  # fmt: skip
    with store.connect() as connection:
        assert connection.execute(select(subscribers.c.email)).scalars().all() == [
            "ada@new.example.org"
        ]
    assert client.get(_confirm_link(mail)).status_code == 200  # reopening changes nothing


def test_opening_the_link_merges_a_subscription_nobody_owns(
    client: TestClient, store: Engine, smtp: SmtpSink
) -> None:
    _victim(store)  # the same reader subscribed without an account before
    ada = create_member(store, "ada", PASSWORD)
    _sign_in(client, "ada")
    _save(client, email="ada@example.org", frequency="daily", topics="graphs")
    client.get(_confirm_link(smtp.messages[0]))
    _save(client, email="victim@example.org", frequency="daily", topics="graphs")
    assert client.get(_confirm_link(smtp.messages[1])).status_code == 200
    merged = _row(store, "victim@example.org")
    assert _state(merged) == (ada.id, "confirmed", "daily", ["graphs"], None)
    old = _row(store, "ada@example.org")
    assert (old.user_id, old.status) == (None, "unsubscribed")


def test_opening_the_link_never_takes_another_members_confirmed_subscription(
    client: TestClient, store: Engine, smtp: SmtpSink
) -> None:
    create_member(store, "ada", PASSWORD)
    _sign_in(client, "ada")
    _save(client, email="ada@example.org")
    client.get(_confirm_link(smtp.messages[0]))
    _save(client, email="victim@example.org")  # free now, so the link goes out
    _victim(store, "victor")  # meanwhile another member confirms the address
    before = _state(_row(store, "victim@example.org"))
    refused = client.get(_confirm_link(smtp.messages[1]))
    assert refused.status_code == 400 and "another account" in refused.text
    assert _state(_row(store, "victim@example.org")) == before
    assert _row(store, "ada@example.org").status == "confirmed"


def test_a_members_link_stops_working_when_they_stop_or_go_back(
    no_cooldown: TestClient, store: Engine, smtp: SmtpSink
) -> None:
    client = no_cooldown
    create_member(store, "ada", PASSWORD)
    _sign_in(client, "ada")
    _save(client, email="ada@example.org")
    first = _confirm_link(smtp.messages[0])
    token = form_token(client.get("/settings").text)
    client.post("/settings/digest/stop", data={"csrf_token": token})
    assert client.get(first).status_code == 400
    assert _row(store, "ada@example.org").status == "unsubscribed"

    _save(client, email="ada@example.org")
    client.get(_confirm_link(smtp.messages[1]))
    _save(client, email="ada@new.example.org")
    _save(client, email="ada@example.org")  # changed their mind: no move pending
    assert client.get(_confirm_link(smtp.messages[2])).status_code == 400
    row = _row(store, "ada@example.org")
    assert (row.status, row.pending_email) == ("confirmed", None)


def test_saving_again_and_again_sends_one_mail(
    client: TestClient, store: Engine, smtp: SmtpSink
) -> None:
    create_member(store, "ada", PASSWORD)
    _sign_in(client, "ada")
    for n in range(20):
        assert _save(client, email="ada@example.org", topics=f"topic {n}").status_code == 303
    assert len(smtp.messages) == 1
    assert _row(store, "ada@example.org").topics == ["topic 19"]


def test_confirmation_mails_one_member_asks_for_are_limited(
    no_cooldown: TestClient, store: Engine, smtp: SmtpSink
) -> None:
    create_member(store, "ada", PASSWORD)
    _sign_in(no_cooldown, "ada")
    pages = [_save(no_cooldown, email=f"ada{n}@example.org") for n in range(6)]
    assert [page.status_code for page in pages] == [303] * 5 + [429]
    assert 0 < int(pages[-1].headers["Retry-After"]) <= 3600
    assert len(smtp.messages) == 5


def test_an_address_list_is_refused_in_settings(
    client: TestClient, store: Engine, smtp: SmtpSink
) -> None:
    create_member(store, "ada", PASSWORD)
    _sign_in(client, "ada")
    page = _save(client, email="ada@example.org,root")
    assert page.status_code == 422 and "is not an email address" in page.text
    assert smtp.envelopes == []


def test_admins_see_failed_digests(client: TestClient, store: Engine, smtp: SmtpSink) -> None:
    from datetime import date

    from broadsheet.digest.outbox import send_digests
    from broadsheet.digest.subscriptions import Frequency
    from broadsheet.papers.record import FeedPlacement, Paper
    from broadsheet.papers.repository import upsert_papers

    with store.begin() as connection:
        upsert_papers(
            connection,
            [Paper(id="2401.00001", title_raw="P", abstract_raw="A", source="t",
                   feed=FeedPlacement(day=date(2024, 1, 10), source="t"))],
        )  # fmt: skip
    add_subscriber(store, "gone@example.org")
    with store.begin() as connection:
        connection.execute(update(subscribers).values(status="confirmed"))
    smtp.replies.append("550 5.1.1 No such user")
    settings = Settings(smtp_host=smtp.host, smtp_port=smtp.port)
    send_digests(store, settings, "s", Frequency.daily, date(2024, 1, 10))

    create_member(store, "root", PASSWORD, is_admin=True)
    create_member(store, "ada", PASSWORD)
    _sign_in(client, "ada")
    assert "Digests that failed" not in client.get("/settings").text
    client.cookies.clear()
    _sign_in(client, "root")
    page = client.get("/settings").text
    assert "Digests that failed" in page
    assert "gone@example.org" in page and "550 5.1.1 No such user" in page


def _status_line(page: str) -> str:
    match = re.search(r'<p class="meta" id="digest-status">(.*?)</p>', page, re.S)
    assert match, "no digest status line"
    return " ".join(match.group(1).split())


def test_saving_without_mail_keeps_the_address_and_one_status_line_says_so(
    store: Engine, database_url: str
) -> None:
    create_member(store, "ada", PASSWORD)
    with make_client(database_url) as site:
        _sign_in(site, "ada")
        assert _status_line(site.get("/settings").text) == "You get no digest."
        saved = _save(site, email="ada@example.org", frequency="weekly")
        assert saved.status_code == 303
        page = site.get(saved.headers["location"]).text
    assert _row(store, "ada@example.org").status == "pending"
    line = _status_line(page)
    assert line == (
        "ada@example.org is saved, waiting for confirmation: the link to confirm it will be "
        "mailed as soon as this site can send mail. Digests start after that."
    )
    assert "we just mailed" not in page and "see the mail we sent" not in page
    assert "Not subscribed" not in page and "You get no digest" not in page


def test_a_members_move_without_mail_is_shown_as_waiting(
    client: TestClient, store: Engine, smtp: SmtpSink, database_url: str
) -> None:
    create_member(store, "ada", PASSWORD)
    _sign_in(client, "ada")
    _save(client, email="ada@example.org")
    client.get(_confirm_link(smtp.messages[0]))
    with make_client(database_url) as site:
        site.cookies.update(client.cookies)
        _save(site, email="ada@new.example.org")
        line = _status_line(site.get("/settings").text)
    assert line.startswith("ada@example.org gets the daily digest; it moves to ada@new.example.org")
    assert "will be mailed as soon as this site can send mail" in line
    assert len(smtp.messages) == 1


def test_only_admins_are_told_that_mail_is_not_configured(
    store: Engine, database_url: str, smtp: SmtpSink
) -> None:
    create_member(store, "root", PASSWORD, is_admin=True)
    create_member(store, "ada", PASSWORD)
    with make_client(database_url) as site:
        _sign_in(site, "root")
        admin_settings, admin_home = site.get("/settings").text, site.get("/").text
        site.cookies.clear()
        _sign_in(site, "ada")
        member_pages = site.get("/settings").text + site.get("/").text
        site.cookies.clear()
        visitor_page = site.get("/").text
    assert "Mail is not configured" in admin_settings
    assert "BROADSHEET_SMTP_HOST" in admin_settings and "BROADSHEET_MAIL_FROM" in admin_settings
    assert "Mail is not configured" in admin_home
    for page in (member_pages, visitor_page):
        assert "Mail is not configured" not in page and "SMTP" not in page
    with make_client(database_url, smtp) as mailing:
        _sign_in(mailing, "root")
        assert "Mail is not configured" not in mailing.get("/settings").text


def test_members_with_a_subscription_see_a_link_instead_of_the_banner_form(
    client: TestClient, store: Engine, smtp: SmtpSink
) -> None:
    banner_form = 'action="/subscribe"'
    assert banner_form in client.get("/").text  # a visitor
    create_member(store, "ada", PASSWORD)
    _sign_in(client, "ada")
    assert banner_form in client.get("/").text  # a member without one
    _save(client, email="ada@example.org")
    pending = client.get("/").text
    assert banner_form not in pending and "your digest settings" in pending
    client.get(_confirm_link(smtp.messages[0]))
    assert banner_form not in client.get("/").text
    token = form_token(client.get("/settings").text)
    client.post("/settings/digest/stop", data={"csrf_token": token})
    assert banner_form in client.get("/").text


def test_a_member_saving_their_address_in_another_case_keeps_one_row(
    client: TestClient, store: Engine, smtp: SmtpSink
) -> None:
    create_member(store, "ada", PASSWORD)
    _sign_in(client, "ada")
    _save(client, email="ada@example.org")
    client.get(_confirm_link(smtp.messages[0]))
    assert _save(client, email="ADA@example.org", frequency="weekly").status_code == 303
    row = _row(store, "ada@example.org")
    assert (row.status, row.frequency, row.pending_email) == ("confirmed", "weekly", None)
    assert len(smtp.messages) == 1


def test_moving_to_another_case_of_an_unowned_address_merges_it(
    client: TestClient, store: Engine, smtp: SmtpSink
) -> None:
    add_subscriber(store, "reader@example.org")
    ada = create_member(store, "ada", PASSWORD)
    _sign_in(client, "ada")
    _save(client, email="ada@example.org", topics="graphs")
    client.get(_confirm_link(smtp.messages[0]))
    _save(client, email="READER@example.org", topics="graphs")
    assert client.get(_confirm_link(smtp.messages[1])).status_code == 200
    with store.connect() as connection:
        rows = connection.execute(
            select(subscribers.c.email, subscribers.c.user_id, subscribers.c.status)
        ).all()
    assert sorted(rows) == [
        ("ada@example.org", None, "unsubscribed"), ("reader@example.org", ada.id, "confirmed"),
    ]  # fmt: skip


def test_the_confirmed_digest_address_needs_no_second_link_for_the_account(
    client: TestClient, store: Engine, smtp: SmtpSink
) -> None:
    create_member(store, "ada", PASSWORD)
    _sign_in(client, "ada")
    _save(client, email="ada@example.org", frequency="daily", topics="")
    with store.begin() as connection:
        connection.execute(update(subscribers).values(status="confirmed"))
    mails = len(smtp.to("ada@example.org"))
    token = form_token(client.get("/settings").text)
    saved = client.post(
        "/settings/email",
        data={"email": "Ada@Example.org", "csrf_token": token},
        follow_redirects=False,
    )
    assert saved.headers["location"] == "/settings?email=verified#account"
    assert "verified: a password reset" in client.get("/settings").text
    # another address is still verified by its own link
    client.post("/settings/email", data={"email": "other@example.org", "csrf_token": token})
    assert "not verified yet" in client.get("/settings").text
    assert len(smtp.to("ada@example.org")) == mails  # no link for the digest's own address


def test_the_verified_account_address_needs_no_second_link_for_the_digest(
    client: TestClient, store: Engine, smtp: SmtpSink
) -> None:
    create_member(store, "ada", PASSWORD)
    _sign_in(client, "ada")
    with store.begin() as connection:
        connection.execute(update(users).values(email="ada@example.org", email_verified_at=NOW))
    saved = _save(client, email="ada@Example.org", frequency="weekly", topics="graphs")
    assert saved.status_code == 303
    row = _row(store, "ada@example.org")
    assert (row.status, row.frequency, row.topics) == ("confirmed", "weekly", ["graphs"])
    assert smtp.to("ada@example.org") == []  # proved once already: no link
    # an address the account has not verified still gets its link
    other = create_member(store, "bob", PASSWORD)
    client.cookies.clear()
    _sign_in(client, "bob")
    _save(client, email="bob@example.org", frequency="daily", topics="")
    assert _row(store, "bob@example.org").status == "pending" and other.id
    assert len(smtp.to("bob@example.org")) == 1


def test_saving_the_digest_answers_at_once_with_the_mail_server_hung(
    store: Engine, database_url: str
) -> None:
    import time

    from fastapi.testclient import TestClient as PlainClient

    from broadsheet.community import mail_queue
    from broadsheet.web.app import create_app
    from smtp_sink import silent_smtp

    create_member(store, "ada", PASSWORD)
    with silent_smtp() as (host, port):
        settings = Settings(
            database_url=database_url, secret_key="test-secret", smtp_host=host,
            smtp_port=port, smtp_timeout=3, base_url="http://testserver",
        )  # fmt: skip
        with PlainClient(create_app(settings)) as site:
            _sign_in(site, "ada")
            started = time.monotonic()
            saved = _save(site, email="ada@example.org")
            seconds = time.monotonic() - started
            assert mail_queue.QUEUE.wait(30)
            page = site.get("/settings").text
    assert saved.status_code == 303 and seconds < 2.0, seconds
    assert "could not be sent yet; it will be retried shortly" in _status_line(page)
