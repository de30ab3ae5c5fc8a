"""A member's digest settings and the admins' list of failed digests."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from broadsheet.community.accounts import create_member
from broadsheet.db.schema import subscribers
from broadsheet.digest.subscriptions import add_subscriber
from smtp_sink import SmtpSink
from web.conftest import form_token

PASSWORD = "long enough password"


def _sign_in(client: TestClient, username: str) -> None:
    token = form_token(client.get("/signin").text)
    client.post("/signin", data={"username": username, "password": PASSWORD, "csrf_token": token})


def _save(client: TestClient, **data: str):
    token = form_token(client.get("/settings").text)
    return client.post(
        "/settings/digest", data={"csrf_token": token, **data}, follow_redirects=False
    )


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


def test_claiming_an_address_someone_confirmed_needs_a_new_confirmation(
    client: TestClient, store: Engine, smtp: SmtpSink
) -> None:
    add_subscriber(store, "shared@example.org")
    with store.begin() as connection:
        connection.execute(update(subscribers).values(status="confirmed"))
    create_member(store, "ada", PASSWORD)
    _sign_in(client, "ada")
    _save(client, email="shared@example.org")
    assert _row(store, "shared@example.org").status == "pending"
    assert len(smtp.to("shared@example.org")) == 1


def test_admins_see_failed_digests(client: TestClient, store: Engine, smtp: SmtpSink) -> None:
    from datetime import date

    from broadsheet.config import Settings
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
