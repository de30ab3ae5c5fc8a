"""Double opt-in end to end: the banner, a real SMTP server, the mailed links."""

from __future__ import annotations

import logging
import re
import time
import zlib
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote, urlsplit

import pytest
from fastapi.testclient import TestClient
from itsdangerous.encoding import base64_decode
from sqlalchemy import Engine, select, update

from broadsheet.community import mail_queue
from broadsheet.config import Settings
from broadsheet.db.schema import subscribers
from broadsheet.digest import tokens
from broadsheet.digest.confirmation import unsubscribe_url
from broadsheet.digest.subscriptions import Subscriber, add_subscriber
from broadsheet.web.app import create_app
from smtp_sink import SmtpSink, silent_smtp
from web.conftest import form_token
from web.test_account_mail import PROMPT_S, _refused


def _subscribe(client: TestClient, email: str, frequency: str = "daily"):
    token = form_token(client.get("/").text)
    return client.post(
        "/subscribe", data={"email": email, "frequency": frequency, "csrf_token": token}
    )


def _status(store: Engine, email: str) -> str:
    with store.connect() as connection:
        return connection.execute(
            select(subscribers.c.status).where(subscribers.c.email == email)
        ).scalar_one()


def _link(message, path: str) -> str:
    text = message.get_body(("plain",)).get_content()
    url = re.search(rf"http://testserver{re.escape(path)}\?token=\S+", text).group(0)
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_confirmation_flow_end_to_end(client: TestClient, store: Engine, smtp: SmtpSink) -> None:
    page = _subscribe(client, "Reader@Example.ORG", "weekly")
    assert page.status_code == 200 and "Check your inbox" in page.text
    assert _status(store, "Reader@example.org") == "pending"
    [mail] = smtp.to("Reader@example.org")
    assert "Confirm" in mail["Subject"]
    assert {part.get_content_type() for part in mail.iter_parts()} == {"text/plain", "text/html"}
    html = mail.get_body(("html",)).get_content()
    link = _link(mail, "/subscribe/confirm")
    assert link.split("=", 1)[1][:20] in html.replace("&amp;", "&")

    confirmed = client.get(link)
    assert confirmed.status_code == 200 and "Subscribed." in confirmed.text
    assert "weekly" in confirmed.text
    assert _status(store, "Reader@example.org") == "confirmed"
    again = client.get(link)  # opening it twice changes nothing and says so
    assert again.status_code == 200 and "Subscribed." in again.text

    _subscribe(client, "reader@example.org")  # already confirmed: no second mail
    assert len(smtp.to("Reader@example.org")) == 1


def test_altered_or_expired_links_are_refused(
    client: TestClient, store: Engine, smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    _subscribe(client, "reader@example.org")
    link = _link(smtp.messages[0], "/subscribe/confirm")
    altered = client.get(link[:-3] + "abc")
    assert altered.status_code == 400 and "not valid" in altered.text
    import itsdangerous.timed

    real_time = itsdangerous.timed.time.time
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: real_time() + 8 * 86_400)
    expired = client.get(link)
    assert expired.status_code == 400 and "expired" in expired.text
    assert _status(store, "reader@example.org") == "pending"


def test_unsubscribe_asks_first_and_one_click_post_works(client: TestClient, store: Engine) -> None:
    subscriber = add_subscriber(store, "reader@example.org")
    url = unsubscribe_url(client.app.state.settings, client.app.state.secret, subscriber)
    path = url.removeprefix("http://testserver")
    page = client.get(path)
    assert page.status_code == 200 and "Stop the daily digest" in page.text
    assert _status(store, "reader@example.org") == "pending"  # a GET changes nothing
    client.cookies.clear()  # one-click comes from the mail client, with no session
    done = client.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200 and "Unsubscribed." in done.text
    assert _status(store, "reader@example.org") == "unsubscribed"


def test_a_link_for_one_purpose_does_not_work_for_another(
    client: TestClient, store: Engine
) -> None:
    subscriber: Subscriber = add_subscriber(store, "reader@example.org")
    subject = tokens.ConfirmationSubject(subscriber.id, subscriber.email, "nonce")
    confirm_token = tokens.make_confirmation_token(client.app.state.secret, subject)
    refused = client.post(f"/unsubscribe?token={confirm_token}")
    assert refused.status_code == 400
    assert _status(store, "reader@example.org") == "pending"


def test_confirmation_mails_to_one_address_are_limited(
    no_cooldown: TestClient, smtp: SmtpSink
) -> None:
    pages = [_subscribe(no_cooldown, "reader@example.org") for _ in range(4)]
    assert [page.status_code for page in pages] == [200, 200, 200, 429]
    assert 0 < int(pages[-1].headers["Retry-After"]) <= 3600
    assert len(smtp.messages) == 3


def test_an_address_with_a_fresh_link_is_not_mailed_again(
    client: TestClient, store: Engine, smtp: SmtpSink
) -> None:
    pages = [_subscribe(client, "reader@example.org") for _ in range(5)]
    assert all(page.status_code == 200 for page in pages)
    assert len(smtp.messages) == 1
    assert "sent less than 15 minutes ago" in " ".join(pages[-1].text.split())
    assert client.get(_link(smtp.messages[0], "/subscribe/confirm")).status_code == 200
    assert _status(store, "reader@example.org") == "confirmed"


def test_confirmation_mails_from_one_client_are_limited(
    no_cooldown: TestClient, smtp: SmtpSink
) -> None:
    pages = [_subscribe(no_cooldown, f"reader{n}@example.org") for n in range(11)]
    assert [page.status_code for page in pages] == [200] * 10 + [429]
    assert "Retry-After" in pages[-1].headers
    assert len(smtp.messages) == 10


@pytest.mark.parametrize(
    "typed",
    [
        "victim@evil.example,root",
        "victim@example.org, root@example.org",
        "Victim <victim@example.org>",
        "victim@example.org\r\nBcc: root@example.org",
        "vic\x00tim@example.org",
        "victim@example.org\x00",
        '"victim root"@example.org',
    ],
)
def test_only_one_plain_address_is_accepted(
    client: TestClient, store: Engine, smtp: SmtpSink, typed: str
) -> None:
    page = _subscribe(client, typed)
    assert page.status_code == 422 and "is not an email address" in page.text
    assert smtp.envelopes == []
    with store.connect() as connection:
        assert connection.execute(select(subscribers.c.id)).all() == []


def test_list_variants_do_not_count_as_new_addresses(
    no_cooldown: TestClient, smtp: SmtpSink
) -> None:
    statuses = [
        _subscribe(no_cooldown, f"victim@example.org,junk{n}").status_code for n in range(5)
    ]
    assert statuses == [422] * 5
    assert smtp.envelopes == []


def test_spellings_of_one_address_are_one_address(
    no_cooldown: TestClient, store: Engine, smtp: SmtpSink
) -> None:
    spellings = [
        "reader@BÜCHER.de",
        "reader@xn--bcher-kva.de",
        " reader@Bücher.DE ",
        "reader@ｂücher.de",
    ]
    statuses = [_subscribe(no_cooldown, typed).status_code for typed in spellings]
    assert statuses == [200, 200, 200, 429]
    with store.connect() as connection:
        assert connection.execute(select(subscribers.c.email)).scalars().all() == [
            "reader@xn--bcher-kva.de"
        ]
    assert [recipients for _, recipients in smtp.envelopes] == [["reader@xn--bcher-kva.de"]] * 3


def test_each_confirmation_mail_has_one_envelope_recipient(
    client: TestClient, smtp: SmtpSink
) -> None:
    _subscribe(client, "Reader@Example.ORG")
    assert smtp.envelopes == [("broadsheet@localhost", ["Reader@example.org"])]


def _unsubscribe_path(client: TestClient, store: Engine, email: str) -> str:
    with store.connect() as connection:
        row = connection.execute(select(subscribers).where(subscribers.c.email == email)).one()
    subscriber = Subscriber(row.id, row.email, row.status, row.frequency)
    url = unsubscribe_url(client.app.state.settings, client.app.state.secret, subscriber)
    return url.removeprefix("http://testserver")


def test_an_old_confirmation_link_does_not_subscribe_again_after_unsubscribing(
    client: TestClient, store: Engine, smtp: SmtpSink
) -> None:
    _subscribe(client, "reader@example.org")
    link = _link(smtp.messages[0], "/subscribe/confirm")
    assert client.get(link).status_code == 200
    assert client.post(_unsubscribe_path(client, store, "reader@example.org")).status_code == 200
    reopened = client.get(link)
    assert reopened.status_code == 400 and "used already" in reopened.text
    assert _status(store, "reader@example.org") == "unsubscribed"


def test_an_unopened_link_stops_working_when_the_address_unsubscribes(
    client: TestClient, store: Engine, smtp: SmtpSink
) -> None:
    _subscribe(client, "reader@example.org")
    link = _link(smtp.messages[0], "/subscribe/confirm")
    client.post(_unsubscribe_path(client, store, "reader@example.org"))
    assert client.get(link).status_code == 400
    assert _status(store, "reader@example.org") == "unsubscribed"


def test_a_newer_link_replaces_the_older_one(
    no_cooldown: TestClient, store: Engine, smtp: SmtpSink
) -> None:
    _subscribe(no_cooldown, "reader@example.org")
    _subscribe(no_cooldown, "reader@example.org")
    first, second = (_link(m, "/subscribe/confirm") for m in smtp.messages)
    assert no_cooldown.get(first).status_code == 400
    assert _status(store, "reader@example.org") == "pending"
    assert no_cooldown.get(second).status_code == 200
    assert _status(store, "reader@example.org") == "confirmed"


def test_links_from_before_nonces_are_refused_clearly(client: TestClient, store: Engine) -> None:
    subscriber = add_subscriber(store, "reader@example.org")
    subject = tokens.LinkSubject(subscriber.id, subscriber.email)
    old = tokens.make_token(client.app.state.secret, tokens.CONFIRM, subject)
    page = client.get(f"/subscribe/confirm?token={old}")
    assert page.status_code == 400 and "older version of this site" in page.text
    assert "to get a new link" in page.text
    assert _status(store, "reader@example.org") == "pending"


def _confirmed_at(store: Engine, address: str) -> None:
    add_subscriber(store, address)
    with store.begin() as connection:
        connection.execute(
            update(subscribers).where(subscribers.c.email == address).values(status="confirmed")
        )


@pytest.mark.parametrize("server", ["hung", "down"])
def test_subscribe_answers_at_once_and_alike_whatever_the_mail_server_does(
    store: Engine, database_url: str, server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    _confirmed_at(store, "known@example.org")
    with silent_smtp() if server == "hung" else _refused() as (host, port):
        settings = Settings(
            database_url=database_url, secret_key="test-secret", smtp_host=host,
            smtp_port=port, smtp_timeout=3, base_url="http://testserver",
        )  # fmt: skip
        with TestClient(create_app(settings)) as site:
            seen, seconds = [], []
            for address in ("known@example.org", "new@example.org"):
                started = time.monotonic()
                answer = _subscribe(site, address)
                seconds.append(time.monotonic() - started)
                seen.append((answer.status_code, answer.text.replace(address, "ADDRESS")))
            assert mail_queue.QUEUE.wait(30)  # the server's timeout ends the job
    assert max(seconds) < PROMPT_S, seconds
    assert seen[0][0] == 200 and seen[0] == seen[1] and "Check your inbox" in seen[0][1]
    with store.connect() as connection:
        row = connection.execute(
            select(subscribers).where(subscribers.c.email == "new@example.org")
        ).one()
    # owed again: the next round mails it
    assert (row.status, row.confirmation_nonce, row.confirmation_sent_at) == ("pending", None, None)
    assert "confirmation for subscription" in caplog.text and "new@example" not in caplog.text


def test_a_failed_confirmation_mail_is_retried(
    store: Engine, database_url: str, client: TestClient, smtp: SmtpSink
) -> None:
    from broadsheet.digest.confirmation import send_unmailed_confirmations

    smtp.replies.append("451 4.3.0 Try again later")
    page = _subscribe(client, "reader@example.org")
    assert page.status_code == 200 and "Check your inbox" in page.text
    assert smtp.messages == []
    settings = client.app.state.settings
    assert send_unmailed_confirmations(store, settings, client.app.state.secret).sent == 1
    [mail] = smtp.to("reader@example.org")
    assert client.get(_link(mail, "/subscribe/confirm")).status_code == 200
    assert _status(store, "reader@example.org") == "confirmed"


def test_a_link_killed_before_its_mail_is_mailed_by_the_next_round(
    store: Engine, client: TestClient, smtp: SmtpSink
) -> None:
    from broadsheet.digest.confirmation import mail_issued_link, send_unmailed_confirmations
    from broadsheet.digest.subscriptions import Frequency, Requester, request_subscription

    app = client.app.state
    past = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    issued = request_subscription(
        store, app.settings, "reader@example.org", Frequency.daily, Requester("192.0.2.1"), past
    ).link  # the process ends here, before the mail after the answer
    assert issued is not None and smtp.messages == []
    assert send_unmailed_confirmations(store, app.settings, app.secret).sent == 1
    assert not mail_issued_link(store, app.settings, app.secret, issued)  # taken over: not twice
    [mail] = smtp.to("reader@example.org")
    assert client.get(_link(mail, "/subscribe/confirm")).status_code == 200
    assert _status(store, "reader@example.org") == "confirmed"


def test_a_link_opened_before_its_mail_was_recorded_confirms(
    store: Engine, client: TestClient, smtp: SmtpSink
) -> None:
    from broadsheet.digest.confirmation import confirm_url
    from broadsheet.digest.subscriptions import Frequency, Requester, request_subscription

    app = client.app.state
    issued = request_subscription(
        store, app.settings, "reader@example.org", Frequency.daily, Requester("192.0.2.1")
    ).link
    path = urlsplit(confirm_url(app.settings, app.secret, issued))
    assert client.get(f"{path.path}?{path.query}").status_code == 200
    assert _status(store, "reader@example.org") == "confirmed"


def _payload(link: str) -> bytes:
    token = unquote(link.split("token=", 1)[1])
    compressed = token.startswith(".")
    data = base64_decode(token.lstrip(".").split(".")[0])
    return zlib.decompress(data) if compressed else data


def test_digest_links_do_not_show_the_address(
    client: TestClient, store: Engine, smtp: SmtpSink
) -> None:
    _subscribe(client, "Ada.Lovelace@Example.org")
    [mail] = smtp.messages
    confirm = _link(mail, "/subscribe/confirm")
    [subscriber] = [s for s in [add_subscriber(store, "ada.lovelace@example.org")]]
    unsubscribe = unsubscribe_url(client.app.state.settings, client.app.state.secret, subscriber)
    for link in (confirm, unsubscribe):
        payload = _payload(link)
        assert payload.startswith(b"[") and b"lovelace" not in payload.lower(), payload
        assert b"example" not in payload.lower()
    assert client.get(confirm).status_code == 200


def test_unsubscribe_links_mailed_before_fingerprints_still_work(
    client: TestClient, store: Engine
) -> None:
    from itsdangerous import URLSafeTimedSerializer

    subscriber = add_subscriber(store, "Reader@example.org")
    other = add_subscriber(store, "other@example.org")
    serializer = URLSafeTimedSerializer(client.app.state.secret, salt=tokens.UNSUBSCRIBE)
    old = serializer.dumps([subscriber.id, "reader@example.org"])
    forged = serializer.dumps([other.id, "reader@example.org"])  # the wrong row for it
    assert client.post(f"/unsubscribe?token={forged}").status_code == 400
    assert _status(store, "other@example.org") == "pending"
    assert "Unsubscribed." in client.post(f"/unsubscribe?token={old}").text
    assert _status(store, "Reader@example.org") == "unsubscribed"


def _unconfigured(database_url: str) -> TestClient:
    """A site whose mail server was never set."""
    return TestClient(create_app(Settings(database_url=database_url, secret_key="test-secret")))


def test_subscribing_without_mail_keeps_the_address_and_says_so(
    store: Engine, database_url: str
) -> None:
    with _unconfigured(database_url) as site:
        page = _subscribe(site, "reader@example.org")
        again = _subscribe(site, "reader@example.org")
    assert page.status_code == 200 and again.status_code == 200
    assert "Address saved" in page.text and "as soon as its mail is set up" in page.text
    assert "Check your inbox" not in page.text and "on its way" not in page.text
    assert page.text.count("<h1") == 1
    with store.connect() as connection:
        row = connection.execute(select(subscribers)).one()
    assert (row.email, row.status, row.confirmation_sent_at) == (
        "reader@example.org",
        "pending",
        None,
    )


def test_addresses_kept_without_mail_get_their_link_once_mail_is_set_up(
    store: Engine, database_url: str, client: TestClient, smtp: SmtpSink
) -> None:
    from datetime import datetime

    from broadsheet.digest.worker import Worker

    with _unconfigured(database_url) as site:
        _subscribe(site, "reader@example.org", "weekly")
    assert smtp.messages == []
    mailing = Settings(database_url=database_url, smtp_host=smtp.host, smtp_port=smtp.port,
                       base_url="http://testserver", digest_hour=23)  # fmt: skip
    worker = Worker(store, mailing, client.app.state.secret, clock=lambda: datetime(2026, 1, 1, 8))
    worker.tick()
    worker.tick()  # owed once: the second round sends nothing
    [mail] = smtp.to("reader@example.org")
    confirmed = client.get(_link(mail, "/subscribe/confirm"))
    assert confirmed.status_code == 200 and "weekly" in confirmed.text
    assert _status(store, "reader@example.org") == "confirmed"


def test_an_address_in_another_case_is_the_same_subscription(
    client: TestClient, store: Engine, smtp: SmtpSink
) -> None:
    first = _subscribe(client, "ann@x.org")
    second = _subscribe(client, "Ann@X.org")
    assert first.status_code == 200 and second.status_code == 200
    with store.connect() as connection:
        assert connection.execute(select(subscribers.c.email)).scalars().all() == ["ann@x.org"]
    client.get(_link(smtp.messages[0], "/subscribe/confirm"))
    assert _subscribe(client, "ANN@x.org").status_code == 200
    assert _status(store, "ann@x.org") == "confirmed"
    assert len(smtp.messages) == 1


def test_an_address_already_unsubscribed_is_told_so(client: TestClient, store: Engine) -> None:
    add_subscriber(store, "reader@example.org")
    path = _unsubscribe_path(client, store, "reader@example.org")
    first = client.post(path)
    assert "Unsubscribed." in first.text and "already" not in first.text
    page = client.get(path)
    assert "already unsubscribed" in page.text and "Stop the daily digest" not in page.text
    again = client.post(path)
    assert again.status_code == 200 and "already unsubscribed" in again.text


def test_each_subscription_page_has_one_heading(client: TestClient, store: Engine) -> None:
    add_subscriber(store, "reader@example.org")
    path = _unsubscribe_path(client, store, "reader@example.org")
    for page in (client.get(path), client.post(path), client.get("/unsubscribe?token=nonsense")):
        assert page.text.count("<h1") == 1, page.text


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/unsubscribe"), ("post", "/unsubscribe"), ("get", "/subscribe/confirm")],
)
def test_a_link_without_its_token_gets_the_bad_link_page(
    client: TestClient, method: str, path: str
) -> None:
    page = getattr(client, method)(path)
    assert page.status_code == 400 and "text/html" in page.headers["content-type"]
    assert "This link does not work" in page.text and "(it may be incomplete)" in page.text
    assert "token: missing" not in page.text and "<nav" in page.text  # the site's layout
