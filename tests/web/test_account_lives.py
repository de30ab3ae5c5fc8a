"""Each account's life is its own: a deleted account's cookie opens nobody's, and recovering an
account (a password change or reset, signing out everywhere, an admin's sign-out) ends every
way in, API tokens included."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, insert, select
from typer.testing import CliRunner

from broadsheet.cli import app as cli_app
from broadsheet.db.schema import api_tokens, feed_entries, rate_limits, users
from broadsheet.web.app import SESSION_COOKIE
from smtp_sink import SmtpSink
from web.test_account_data import PAPER, _link, _verified, make_token, site  # noqa: F401
from web.test_community import PASSWORD, sign_in, sign_up
from web.test_library import post

NEW_PASSWORD = "another long password"


def _thief_of(client: TestClient) -> TestClient:
    """Another client holding a copy of ``client``'s session cookie."""
    thief = TestClient(client.app)
    thief.cookies.set(SESSION_COOKIE, client.cookies[SESSION_COOKIE])
    return thief


def _signed_in_as(client: TestClient) -> str | None:
    page = client.get("/settings", follow_redirects=False)
    if page.status_code != 200:
        return None
    return re.search(r'name="username" value="([^"]+)"', page.text).group(1)


def _api_works(client: TestClient, token: str) -> bool:
    answer = client.get("/api/me/library", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code in (200, 401)
    return answer.status_code == 200


def test_a_deleted_accounts_cookie_opens_nothing_when_the_next_sign_up_comes(
    site: TestClient,  # noqa: F811
    store: Engine,
) -> None:
    sign_up(site, "ada")
    make_token(site, "mine")
    post(site, "/papers/" + PAPER + "/save", htmx=True)
    thief = _thief_of(site)
    assert _signed_in_as(thief) == "ada"
    with store.connect() as connection:
        ada_id = connection.execute(select(users.c.id)).scalar_one()
    deleted = post(site, "/settings/delete", {"password": PASSWORD})
    assert deleted.status_code == 200 and "Account deleted" in deleted.text
    with store.connect() as connection:  # ada's counters went with her
        left = connection.execute(select(rate_limits.c.key)).scalars().all()
    assert not [key for key in left if key.endswith(f":member:{ada_id}")]

    newcomer = TestClient(site.app)
    sign_up(newcomer, "bob")
    with store.connect() as connection:
        bob_id = connection.execute(select(users.c.id)).scalar_one()
    assert bob_id > ada_id  # never the old id
    assert _signed_in_as(thief) is None
    assert _signed_in_as(newcomer) == "bob"
    # bob's first save is his first: nothing of ada's counters passed on
    assert post(newcomer, "/papers/" + PAPER + "/save", htmx=True).status_code == 200


def test_making_a_token_asks_for_the_password_again(
    site: TestClient,  # noqa: F811
    store: Engine,
) -> None:
    sign_up(site, "ada")
    refused = post(site, "/settings/tokens", {"name": "stolen", "password": "not my password"})
    assert refused.status_code == 401 and "That is not your password" in refused.text
    missing = post(site, "/settings/tokens", {"name": "stolen"})
    assert missing.status_code == 401
    with store.connect() as connection:
        assert connection.execute(select(func.count()).select_from(api_tokens)).scalar() == 0
    token = make_token(site, "mine")
    # the page after the redirect shows it once: a reload neither shows it nor makes another
    again = site.get("/settings?token=new")
    assert token not in again.text
    with store.connect() as connection:
        assert connection.execute(select(func.count()).select_from(api_tokens)).scalar() == 1


def test_a_plain_sign_out_keeps_tokens_and_says_so(site: TestClient) -> None:  # noqa: F811
    sign_up(site, "ada")
    token = make_token(site, "script")
    assert "Tokens stay when you sign out" in site.get("/settings").text
    post(site, "/signout")
    assert _api_works(site, token)


def test_a_password_change_revokes_every_token(site: TestClient) -> None:  # noqa: F811
    sign_up(site, "ada")
    token = make_token(site, "script")
    changed = post(
        site,
        "/settings/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 303
    assert not _api_works(site, token)
    assert _signed_in_as(site) == "ada"  # this session goes on


def test_a_password_reset_revokes_every_token_and_session(
    site: TestClient,  # noqa: F811
    smtp: SmtpSink,
) -> None:
    sign_up(site, "ada")
    _verified(site, smtp)
    token = make_token(site, "script")
    thief = _thief_of(site)
    post(site, "/password/forgot", {"who": "ada"})
    link = _link(smtp, "ada@example.org", "/password/reset")
    stranger = TestClient(site.app)
    reset_token = unquote(link.split("token=", 1)[1])
    answer = post(stranger, "/password/reset", {"token": reset_token, "new_password": NEW_PASSWORD})
    assert answer.status_code == 303
    # the reset ends on settings saying what happened, not on a "change your password" form
    assert answer.headers["location"] == "/settings?password=reset"
    landed = stranger.get(answer.headers["location"])
    assert "Your new password is set" in landed.text and "every API token is revoked" in landed.text
    assert not _api_works(site, token)
    assert _signed_in_as(thief) is None


def test_signing_out_everywhere_revokes_tokens_and_ends_this_session_too(
    site: TestClient,  # noqa: F811
) -> None:
    sign_up(site, "ada")
    token = make_token(site, "script")
    thief = _thief_of(site)
    wrong = post(site, "/settings/sign-out-everywhere", {"password": "not my password"})
    assert wrong.status_code == 401 and _api_works(site, token)
    done = post(site, "/settings/sign-out-everywhere", {"password": PASSWORD})
    assert done.status_code == 200 and "Signed out everywhere" in done.text
    assert not _api_works(site, token)
    assert _signed_in_as(site) is None and _signed_in_as(thief) is None
    sign_in(site, "ada")
    assert _signed_in_as(site) == "ada"


@pytest.mark.parametrize("command", [["users", "sign-out", "ada"], ["users", "password", "ada"]])
def test_an_admins_sign_out_or_new_password_revokes_tokens(
    site: TestClient,  # noqa: F811
    cli: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
) -> None:
    sign_up(site, "ada")
    token = make_token(site, "script")
    monkeypatch.setenv("BROADSHEET_NEW_PASSWORD", NEW_PASSWORD)
    result = cli.invoke(cli_app, command)
    assert result.exit_code == 0, result.output
    assert "tokens are revoked" in " ".join(result.output.split())
    assert not _api_works(site, token)
    assert _signed_in_as(site) is None


def test_a_deleted_submitters_name_leaves_the_papers_they_submitted(
    site: TestClient,  # noqa: F811
    store: Engine,
) -> None:
    sign_up(site, "ada")
    with store.begin() as connection:
        day = connection.execute(select(func.current_date())).scalar()
        connection.execute(
            insert(feed_entries).values(
                paper_id=PAPER, day=day, source="submission", submitted_by="ada",
                created_at=func.current_timestamp(),
            )
        )  # fmt: skip
    post(site, "/settings/delete", {"password": PASSWORD})
    with store.connect() as connection:
        assert connection.execute(select(feed_entries.c.submitted_by)).scalar_one() is None
