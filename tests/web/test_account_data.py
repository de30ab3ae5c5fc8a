"""The account a member keeps: email verified by mail, password reset by mail, API tokens, the
export of everything, and deleting it all (with a real SMTP server)."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from broadsheet.community import mail_queue
from broadsheet.db.schema import papers, subscribers, users
from broadsheet.papers.record import Paper
from broadsheet.papers.repository import upsert_papers
from smtp_sink import SmtpSink
from web.test_community import PASSWORD, sign_in, sign_up
from web.test_library import post

PAPER = "2401.00001"


@pytest.fixture
def site(client: TestClient, store: Engine) -> TestClient:
    with store.begin() as connection:
        upsert_papers(
            connection,
            [
                Paper(
                    PAPER,
                    "Graph networks over-smooth",
                    "An abstract.",
                    "test",
                    authors=["Ada Lovelace"],
                    published_at=datetime(2024, 1, 2),
                )
            ],
        )
    return client


def _link(smtp: SmtpSink, address: str, path: str) -> str:
    assert mail_queue.QUEUE.wait(30)  # account mail goes out after the answer
    [message] = smtp.to(address)[-1:]
    body = message.get_body(("plain",)).get_content()
    found = re.search(rf"http://testserver({re.escape(path)}\?token=\S+)", body)
    assert found, body
    return found.group(1)


def _verified(site: TestClient, smtp: SmtpSink, address: str = "ada@example.org") -> None:
    assert post(site, "/settings/email", {"email": address}).status_code == 303
    assert "Address verified" in site.get(_link(smtp, address, "/settings/email/verify")).text


def test_an_account_address_is_verified_by_the_link_mailed_to_it(
    site: TestClient, smtp: SmtpSink
) -> None:
    sign_up(site, "ada")
    refused = post(site, "/settings/email", {"email": "not an address"})
    assert refused.status_code == 422 and "is not an email address" in refused.text
    assert post(site, "/settings/email", {"email": "Ada@Example.org"}).status_code == 303
    link = _link(smtp, "Ada@example.org", "/settings/email/verify")
    assert "not verified yet" in site.get("/settings").text
    assert site.get(link).status_code == 200
    assert "verified: a password reset" in site.get("/settings").text
    assert site.get(link).status_code == 200  # opening it twice is fine
    # a new address makes the old link useless
    post(site, "/settings/email", {"email": "other@example.org"})
    stale = site.get(link)
    assert stale.status_code == 400 and "no longer has" in stale.text
    assert site.get("/settings/email/verify?token=forged").status_code == 400


def test_a_password_reset_link_works_once_and_ends_other_sessions(
    site: TestClient, smtp: SmtpSink, store: Engine
) -> None:
    sign_up(site, "ada")
    _verified(site, smtp)
    post(site, "/signout")
    answer = post(site, "/password/forgot", {"who": "ada@example.org"})
    assert answer.status_code == 200 and "If that account has a verified address" in answer.text
    link = _link(smtp, "ada@example.org", "/password/reset")
    page = site.get(link)
    assert page.status_code == 200 and "For ada" in page.text
    token = link.split("token=")[1]
    from urllib.parse import unquote

    short = post(site, "/password/reset", {"token": unquote(token), "new_password": "short"})
    assert short.status_code == 422
    done = post(
        site, "/password/reset", {"token": unquote(token), "new_password": "a brand new pass"}
    )
    assert done.status_code == 303 and "Sign out" in site.get("/").text  # signed in
    again = site.get(link)
    assert again.status_code == 400 and "used already" in again.text
    post(site, "/signout")
    assert sign_in(site, "ada").status_code != 303  # the old password is gone
    assert sign_in(site, "ada", "a brand new pass").status_code == 303


def test_forgot_answers_the_same_for_unknown_or_unverified_accounts_and_is_limited(
    site: TestClient, smtp: SmtpSink
) -> None:
    sign_up(site, "bob")
    post(site, "/settings/email", {"email": "bob@example.org"})  # never verified
    post(site, "/signout")
    assert mail_queue.QUEUE.wait(30)
    sent_before = len(smtp.messages)
    for who in ("bob", "nobody", "nobody@example.org"):
        answer = post(site, "/password/forgot", {"who": who})
        assert answer.status_code == 200 and "If that account" in answer.text
    assert mail_queue.QUEUE.wait(30)
    assert len(smtp.messages) == sent_before
    for _ in range(2):
        post(site, "/password/forgot", {"who": "x"})
    limited = post(site, "/password/forgot", {"who": "x"})
    assert limited.status_code == 429 and "Retry-After" in limited.headers


def make_token(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """A new API token, made as the settings page makes it (the password typed again)."""
    made = post(client, "/settings/tokens", {"name": name, "password": password})
    assert made.status_code == 303 and made.headers["location"] == "/settings?token=new#tokens"
    shown = client.get(made.headers["location"]).text
    return re.search(r'<code id="new-token">(bst_[^<]+)</code>', shown).group(1)


def test_api_tokens_act_for_their_member_only_until_revoked(
    site: TestClient, store: Engine
) -> None:
    sign_up(site, "ada")
    token = make_token(site, "my script")
    assert token not in site.get("/settings").text  # shown once
    with store.connect() as connection:
        stored = connection.execute(select(users.c.id)).all()
    assert stored  # and the token itself is nowhere in the store
    auth = {"Authorization": f"Bearer {token}"}
    assert site.get("/api/me/library").status_code == 401  # the session cookie is not enough
    assert site.get("/api/me/library").headers["WWW-Authenticate"] == "Bearer"
    assert site.put(f"/api/me/library/arXiv:{PAPER}v2", headers=auth).status_code == 204
    changed = site.put(
        f"/api/me/library/{PAPER}", headers=auth, json={"read": True, "note": "*good*"}
    )
    assert changed.status_code == 204
    [entry] = site.get("/api/me/library", headers=auth).json()
    assert entry["paper"]["id"] == PAPER and entry["read_at"] and entry["note"] == "*good*"
    assert site.put("/api/me/library/2499.99999", headers=auth).status_code == 404
    follow = {"kind": "author", "name": "ada lovelace"}
    assert site.post("/api/me/following", headers=auth, json=follow).status_code == 204
    assert site.get("/api/me/following", headers=auth).json()[0]["name"] == "Ada Lovelace"
    assert [p["id"] for p in site.get("/api/me/following/papers", headers=auth).json()] == [PAPER]
    assert site.get("/api/me/for-you", headers=auth).json() == []  # no vectors here
    exported = site.get("/api/me/export", headers=auth).json()
    assert exported["library"][0]["note"] == "*good*"
    assert site.delete(f"/api/me/library/{PAPER}", headers=auth).status_code == 204
    assert site.get("/api/me/library", headers=auth).json() == []
    token_id = re.search(r"/settings/tokens/(\d+)/revoke", site.get("/settings").text).group(1)
    assert post(site, f"/settings/tokens/{token_id}/revoke").status_code == 303
    assert site.get("/api/me/library", headers=auth).status_code == 401
    assert site.get("/api/me/library", headers={"Authorization": "Bearer nope"}).status_code == 401
    empty = post(site, "/settings/tokens", {"name": " ", "password": PASSWORD})
    assert empty.status_code == 422 and "Token name is empty" in empty.text


def test_the_member_api_is_in_openapi_with_bearer_tokens(site: TestClient) -> None:
    spec = site.get("/openapi.json").json()
    assert "/api/me/library" in spec["paths"] and "/api/me/export" in spec["paths"]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert spec["paths"]["/api/me/for-you"]["get"]["security"] == [{"HTTPBearer": []}]


def test_export_holds_everything_and_deleting_takes_it_all_with_counts_right(
    site: TestClient, store: Engine, smtp: SmtpSink
) -> None:
    sign_up(site, "ada")
    post(site, f"/papers/{PAPER}/vote")
    post(site, f"/papers/{PAPER}/save", {"saved": "true"})
    post(site, f"/papers/{PAPER}/note", {"note": "mine"})
    post(site, f"/papers/{PAPER}/comments", {"body": "A comment."})
    post(site, "/library/collections", {"name": "Picks", "visibility": "public"})
    post(site, "/settings/digest", {"email": "ada@example.org", "frequency": "daily"})
    export = site.get("/settings/export")
    assert 'filename="broadsheet-ada.json"' in export.headers["content-disposition"]
    data = json.loads(export.text)
    assert data["format"] == "broadsheet-member-export/1"
    assert [v["paper_id"] for v in data["votes"]] == [PAPER]
    assert data["library"][0]["note"] == "mine"
    assert data["comments"][0]["body"] == "A comment."
    assert data["collections"][0]["name"] == "Picks"
    assert data["subscription"]["email"] == "ada@example.org"
    assert "password_hash" not in export.text
    with store.connect() as connection:
        before = connection.execute(
            select(papers.c.member_votes, papers.c.comment_count).where(papers.c.id == PAPER)
        ).one()
    assert tuple(before) == (1, 1)
    wrong = post(site, "/settings/delete", {"password": "not it"})
    assert wrong.status_code == 401 and "That is not your password" in wrong.text
    gone = post(site, "/settings/delete", {"password": "long enough password"})
    assert gone.status_code == 200 and "Account deleted" in gone.text
    with store.connect() as connection:
        after = connection.execute(
            select(papers.c.member_votes, papers.c.comment_count).where(papers.c.id == PAPER)
        ).one()
        assert tuple(after) == (0, 0)
        assert connection.execute(select(users)).first() is None
        sub = connection.execute(select(subscribers.c.status, subscribers.c.user_id)).one()
        assert tuple(sub) == ("unsubscribed", None)
    assert "Sign out" not in site.get("/").text
    assert sign_in(site, "ada").status_code != 303
    assert sign_up(site, "ada").status_code == 303  # the name is free again
