"""The admin dashboard as an admin, a member and a stranger use it: jobs, index, failed mails
with a retry, members (find, disable, sign out everywhere, make admin, delete), reports of
comments, and the audit log of every admin action."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select, update

from broadsheet.community.accounts import create_member, set_admin
from broadsheet.community.api_tokens import create_token
from broadsheet.community.comments import add_comment
from broadsheet.config import Settings
from broadsheet.db.schema import admin_audit, comments, digest_outbox, subscribers, users
from broadsheet.digest.subscriptions import add_subscriber
from broadsheet.ops.jobs import harvest_job, record_run
from broadsheet.papers.repository import upsert_papers
from web.conftest import MailingClient, form_token, mail_settings
from web.test_community import PASSWORD, _paper, sign_in, sign_up
from web.test_library import post

ADMIN_PAGES = ["/admin", "/admin/members", "/admin/reports", "/admin/audit", "/admin/settings"]


@pytest.fixture
def site(store: Engine, database_url: str, smtp) -> TestClient:
    create_member(store, "boss", PASSWORD, is_admin=True)
    settings = Settings(
        database_url=database_url, secret_key="test-secret", harvest_categories=["cs.CL"],
        **mail_settings(smtp),
    )  # fmt: skip
    with MailingClient(create_app_for(settings)) as client:
        yield client


def create_app_for(settings: Settings):
    from broadsheet.web.app import create_app

    return create_app(settings)


def _audit(store: Engine) -> list[tuple[str | None, str, str]]:
    with store.connect() as connection:
        rows = connection.execute(
            select(users.c.username, admin_audit.c.action, admin_audit.c.target)
            .outerjoin(users, users.c.id == admin_audit.c.actor_id)
            .order_by(admin_audit.c.id)
        )
        return [tuple(r) for r in rows]


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_do_not_exist_for_strangers_and_members(
    site: TestClient, store: Engine, path: str
) -> None:
    assert site.get(path, follow_redirects=False).status_code == 404
    sign_up(site, "ada")
    assert site.get(path).status_code == 404
    ada = store.connect().execute(select(users.c.id).where(users.c.username == "ada")).scalar()
    for action in ("disable", "make-admin", "delete"):
        refused = post(site, f"/admin/members/{ada}/{action}")
        assert refused.status_code == 404
    assert post(site, "/admin/outbox/retry", {"period": "2026-01-01"}).status_code == 404
    with store.connect() as connection:
        assert connection.execute(select(users.c.is_admin).where(users.c.id == ada)).scalar() == 0
    assert _audit(store) == []
    post(site, "/signout")
    sign_in(site, "boss")
    page = site.get(path)
    assert page.status_code == 200 and page.text.count("<h1") == 1


def test_disabling_a_member_ends_every_way_in_until_enabled(
    site: TestClient, store: Engine, database_url: str
) -> None:
    ada = create_member(store, "ada", PASSWORD)
    token = create_token(store, ada, "script")
    with MailingClient(
        create_app_for(Settings(database_url=database_url, secret_key="test-secret"))
    ) as hers:
        sign_in(hers, "ada")
        assert hers.get("/settings").status_code == 200
        sign_in(site, "boss")
        done = post(site, f"/admin/members/{ada.id}/disable")
        assert done.status_code == 303
        assert "disabled" in site.get(done.headers["location"]).text
        assert hers.get("/settings", follow_redirects=False).status_code == 303  # signed out
        refused = sign_in(hers, "ada")
        assert "This account is disabled" in refused.text
        api = hers.get("/api/me/library", headers={"Authorization": f"Bearer {token}"})
        assert api.status_code == 401
        post(site, f"/admin/members/{ada.id}/enable")
        sign_in(hers, "ada")
        assert hers.get("/settings").status_code == 200
    assert [a for _, a, _ in _audit(store)] == ["member.disable", "member.enable"]
    assert {who for who, _, _ in _audit(store)} == {"boss"}


def test_an_admin_cannot_lock_themselves_out_here(site: TestClient, store: Engine) -> None:
    sign_in(site, "boss")
    boss = store.connect().execute(select(users.c.id).where(users.c.username == "boss")).scalar()
    for action in ("disable", "unmake-admin", "delete"):
        assert post(site, f"/admin/members/{boss}/{action}").status_code == 403
    assert post(site, "/admin/members/999999/disable").status_code == 404
    assert site.get("/admin").status_code == 200
    assert _audit(store) == []


def test_members_are_found_paged_and_made_admin_signed_out_and_deleted(
    site: TestClient, store: Engine
) -> None:
    for name in ("ada", "alan", "grace"):
        create_member(store, name, PASSWORD)
    with store.begin() as connection:
        connection.execute(update(users).where(users.c.username == "grace").values(email="g@x.org"))
    sign_in(site, "boss")
    found = site.get("/admin/members", params={"q": "A"}).text
    assert "ada" in found and "alan" in found and "grace" in found  # "grace" holds an a
    only = site.get("/admin/members", params={"q": "g@x"}).text
    assert "<b>grace</b>" in only and "<b>ada</b>" not in only
    wild = site.get("/admin/members", params={"q": "%"}).text
    assert "No member matches." in wild  # a LIKE wildcard is a plain character here
    ada = store.connect().execute(select(users.c.id).where(users.c.username == "ada")).scalar()
    assert post(site, f"/admin/members/{ada}/make-admin").status_code == 303
    assert post(site, f"/admin/members/{ada}/sign-out").status_code == 303
    assert post(site, f"/admin/members/{ada}/delete").status_code == 303
    assert post(site, f"/admin/members/{ada}/delete").status_code == 404
    actions = [a for _, a, _ in _audit(store)]
    assert actions == ["member.make_admin", "member.sign_out", "member.delete"]
    assert site.get("/admin/members", params={"page": 99}).status_code == 200


def test_a_reported_comment_reaches_the_admins_who_hide_it(site: TestClient, store: Engine) -> None:
    with store.begin() as connection:
        upsert_papers(connection, [_paper("2401.00001")])
    author = create_member(store, "troll", PASSWORD)
    comment = add_comment(store, author, "2401.00001", "something rude")
    sign_up(site, "ada")
    for reason in ("rude", "very rude"):  # once per member: the newest reason
        done = post(site, f"/comments/{comment.id}/report", {"reason": reason})
        assert done.status_code == 303
    assert "Reported: the admins will look at it" in site.get(done.headers["location"]).text
    assert post(site, "/comments/424242/report").status_code == 404
    post(site, "/signout")
    sign_in(site, "boss")
    page = site.get("/admin/reports").text
    assert "1 report since" in page and "ada: very rude" in page and "something rude" in page
    assert "Reports (1 open)" in site.get("/admin").text
    assert post(site, f"/admin/reports/{comment.id}", {"outcome": "hidden"}).status_code == 303
    with store.connect() as connection:
        hidden = connection.execute(
            select(comments.c.hidden_at).where(comments.c.id == comment.id)
        ).scalar()
    assert hidden is not None
    assert "No open reports." in site.get("/admin/reports").text
    assert post(site, f"/admin/reports/{comment.id}", {"outcome": "dismissed"}).status_code == 404
    assert [a for _, a, _ in _audit(store)] == ["comment.hide", "report.hidden"]
    post(site, "/signout")
    sign_in(site, "ada")  # a hidden comment cannot be reported any more
    assert post(site, f"/comments/{comment.id}/report").status_code == 404


def test_the_dashboard_shows_a_failed_harvest_as_late(site: TestClient, store: Engine) -> None:
    long_ago = datetime(2026, 1, 1)
    failing = record_run(store, harvest_job("cs.CL"), "w1", clock=lambda: long_ago)
    with pytest.raises(RuntimeError), failing:
        raise RuntimeError("arXiv answered 503")
    sign_in(site, "boss")
    page = site.get("/admin").text
    assert "1 late job" in page and "harvest:cs.CL" in page and "arXiv answered 503" in page


def test_failed_digests_are_retried_from_the_dashboard(site: TestClient, store: Engine) -> None:
    reader = add_subscriber(store, "reader@example.org")
    now = datetime.now()
    with store.begin() as connection:
        connection.execute(
            update(subscribers).where(subscribers.c.id == reader.id).values(status="confirmed")
        )
        connection.execute(
            insert(digest_outbox).values(
                subscriber_id=reader.id,
                period_key="2026-01-01",
                status="failed",
                attempts=5,
                last_error="550 mailbox full",
                next_attempt_at=now - timedelta(days=1),
                created_at=now - timedelta(days=2),
            )
        )
    sign_in(site, "boss")
    page = site.get("/admin").text
    assert "550 mailbox full" in page and "Retry the failed digests of 2026-01-01" in page
    assert post(site, "/admin/outbox/retry", {"period": "nonsense"}).status_code == 422
    done = post(site, "/admin/outbox/retry", {"period": "2026-01-01"})
    assert done.status_code == 303
    with store.connect() as connection:
        row = connection.execute(select(digest_outbox)).one()
    assert row.status != "failed" and row.attempts <= 1
    assert "due again" in site.get(done.headers["location"]).text
    assert [a for _, a, _ in _audit(store)] == ["outbox.retry"]


def test_the_audit_log_is_paged_and_keeps_entries_of_deleted_admins(
    site: TestClient, store: Engine
) -> None:
    other = create_member(store, "other", PASSWORD)
    set_admin(store, "other")
    sign_in(site, "boss")
    for _ in range(3):
        post(site, f"/admin/members/{other.id}/sign-out")
    post(site, f"/admin/members/{other.id}/delete")
    page = site.get("/admin/audit").text
    assert page.count("member.sign_out") == 3 and "member.delete" in page
    assert site.get("/admin/audit", params={"page": 2}).status_code == 200
    form_token(page)


def test_hidden_things_show_why_they_were_hidden(site: TestClient, store: Engine) -> None:
    with store.begin() as connection:
        upsert_papers(connection, [_paper("2401.00001"), _paper("2401.00002")])
    author = create_member(store, "troll", PASSWORD)
    comment = add_comment(store, author, "2401.00002", "buy my pills")
    sign_up(site, "ada")
    post(site, f"/comments/{comment.id}/report", {"reason": "spam"})
    post(site, "/signout")
    sign_in(site, "boss")
    hid = post(site, "/papers/2401.00001/hide", {"hidden": "true", "reason": "  a\nduplicate "})
    assert hid.status_code == 303
    post(site, f"/admin/reports/{comment.id}", {"outcome": "hidden"})
    page = site.get("/admin/hidden").text
    assert "hidden" in page and ": a duplicate</span>" in page
    assert "(reported: spam)" in page
    post(site, "/papers/2401.00001/hide", {"hidden": "false"})
    assert "Paper 2401.00001" not in site.get("/admin/hidden").text
    actions = [a for _, a, _ in _audit(store)]
    assert actions == ["paper.hide", "comment.hide", "report.hidden", "paper.unhide"]


def test_the_command_line_disables_and_its_actions_are_audited(
    site: TestClient, store: Engine, cli
) -> None:
    from broadsheet.cli import app

    create_member(store, "ada", PASSWORD)
    runner, env = cli, None
    commands = (["users", "disable", "ADA"], ["users", "admin", "ada"],
                ["users", "disable", "ada", "--enable"], ["users", "sign-out", "ada"])  # fmt: skip
    for args in commands:
        done = runner.invoke(app, args, env=env)
        assert done.exit_code == 0, done.output
    assert runner.invoke(app, ["users", "disable", "nobody"], env=env).exit_code == 1
    assert _audit(store) == [
        (None, "member.disable", "user:2"),
        (None, "member.make_admin", "user:2"),
        (None, "member.enable", "user:2"),
        (None, "member.sign_out", "user:2"),
    ]
    sign_in(site, "boss")
    page = site.get("/admin/audit").text
    assert page.count("<td>the command line</td>") == 4 and "(deleted account)" not in page


def test_site_settings_close_sign_ups_and_show_a_notice(
    site: TestClient, store: Engine, database_url: str
) -> None:
    sign_in(site, "boss")
    assert "Anyone may sign up" in site.get("/admin/settings").text
    too_long = post(site, "/admin/settings", {"signups_open": "true", "notice": "x" * 301})
    assert too_long.status_code == 422 and "at most 300" in too_long.text
    saved = post(site, "/admin/settings", {"notice": "Down for maintenance  at 18:00\nUTC"})
    assert saved.status_code == 303
    assert "Saved: notice, signups_open" in site.get(saved.headers["location"]).text
    again = post(site, "/admin/settings", {"notice": "Down for maintenance at 18:00 UTC"})
    assert "Nothing changed." in site.get(again.headers["location"]).text
    own = Settings(database_url=database_url, secret_key="test-secret")
    with MailingClient(create_app_for(own)) as visitor:  # another process's view of the store
        home = visitor.get("/").text
        assert "Down for maintenance at 18:00 UTC" in home and 'href="/signup' not in home
        closed = visitor.get("/signup")
        assert closed.status_code == 403 and "Sign-ups are closed" in closed.text
        token = form_token(visitor.get("/signin").text)
        refused = visitor.post(
            "/signup", data={"username": "eve", "password": PASSWORD, "csrf_token": token}
        )
        assert refused.status_code == 403
    with store.connect() as connection:
        assert (
            connection.execute(select(users.c.id).where(users.c.username == "eve")).first() is None
        )
    assert [a for _, a, _ in _audit(store)] == ["site.settings"]
    create_member(store, "ada", PASSWORD)
    post(site, "/signout")
    sign_in(site, "ada")
    assert site.get("/admin/settings").status_code == 404
    assert post(site, "/admin/settings", {"signups_open": "true"}).status_code == 404
