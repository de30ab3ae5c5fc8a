"""Double opt-in end to end: the banner, a real SMTP server, the mailed links."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from broadsheet.db.schema import subscribers
from broadsheet.digest import tokens
from broadsheet.digest.confirmation import unsubscribe_url
from broadsheet.digest.subscriptions import Subscriber, add_subscriber
from smtp_sink import SmtpSink
from web.conftest import form_token


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
    assert client.get(link).status_code == 200  # opening it twice is harmless

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
    subject = tokens.LinkSubject(subscriber.id, subscriber.email)
    confirm_token = tokens.make_token(client.app.state.secret, tokens.CONFIRM, subject)
    refused = client.post(f"/unsubscribe?token={confirm_token}")
    assert refused.status_code == 400
    assert _status(store, "reader@example.org") == "pending"


def test_confirmation_mails_to_one_address_are_limited(client: TestClient, smtp: SmtpSink) -> None:
    statuses = [_subscribe(client, "reader@example.org").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert len(smtp.messages) == 3


def test_mail_server_down_is_explained(store: Engine, database_url: str) -> None:
    from broadsheet.config import Settings
    from broadsheet.web.app import create_app
    from helpers import free_port

    settings = Settings(
        database_url=database_url, secret_key="x", smtp_host="127.0.0.1", smtp_port=free_port()
    )
    with TestClient(create_app(settings)) as down:
        page = _subscribe(down, "reader@example.org")
    assert page.status_code == 503 and "could not be sent" in page.text
