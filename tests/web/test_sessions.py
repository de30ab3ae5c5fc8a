"""Sign-out, a password change and an admin's revocation end sessions, copied cookies too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from broadsheet.cli import app as cli_app
from broadsheet.community.accounts import create_member
from broadsheet.config import Settings
from broadsheet.web.app import SESSION_COOKIE, create_app
from web.conftest import form_token

PASSWORD = "long enough password"
NEW_PASSWORD = "another long password"


@pytest.fixture
def site(store, database_url: str) -> FastAPI:
    create_member(store, "ada", PASSWORD)
    return create_app(Settings(database_url=database_url, secret_key="test-secret"))


@pytest.fixture
def browser(site: FastAPI) -> Iterator[TestClient]:
    with TestClient(site) as client:
        yield client


def sign_in(client: TestClient, username: str = "ada", password: str = PASSWORD) -> None:
    token = form_token(client.get("/signin").text)
    response = client.post(
        "/signin",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def copy_of(site: FastAPI, client: TestClient) -> TestClient:
    """Another client holding the same session cookie (as a thief would)."""
    thief = TestClient(site)
    thief.cookies.set(SESSION_COOKIE, client.cookies[SESSION_COOKIE])
    return thief


def signed_in(client: TestClient) -> bool:
    return client.get("/settings", follow_redirects=False).status_code == 200


def test_sign_out_ends_a_copied_session_cookie(site: FastAPI, browser: TestClient) -> None:
    sign_in(browser)
    thief = copy_of(site, browser)
    assert signed_in(thief)
    token = form_token(browser.get("/").text)
    assert browser.post("/signout", data={"csrf_token": token}).status_code == 200
    assert not signed_in(browser)
    assert not signed_in(thief)
    token = form_token(thief.get("/").text)
    stolen = thief.post("/signout", data={"csrf_token": token}, follow_redirects=False)
    assert stolen.status_code == 303  # nothing to end: the copy is signed out already
    assert "Sign out" not in thief.get("/").text


def test_sign_out_ends_the_members_other_sessions_too(site: FastAPI, browser: TestClient) -> None:
    sign_in(browser)
    with TestClient(site) as laptop:
        sign_in(laptop)
        token = form_token(browser.get("/").text)
        browser.post("/signout", data={"csrf_token": token})
        assert not signed_in(laptop)
        sign_in(laptop)  # signing in again works
        assert signed_in(laptop)


def test_changing_the_password_ends_other_sessions_but_not_this_one(
    site: FastAPI, browser: TestClient
) -> None:
    sign_in(browser)
    thief = copy_of(site, browser)
    page = browser.get("/settings/password")
    assert page.status_code == 200 and 'name="new_password"' in page.text
    wrong = browser.post(
        "/settings/password",
        data={
            "current_password": "not my password",
            "new_password": NEW_PASSWORD,
            "csrf_token": form_token(page.text),
        },
    )
    assert wrong.status_code == 401 and "not your current password" in wrong.text
    changed = browser.post(
        "/settings/password",
        data={
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "csrf_token": form_token(page.text),
        },
        follow_redirects=False,
    )
    assert changed.status_code == 303
    assert signed_in(browser)
    assert not signed_in(thief)
    with TestClient(site) as other:
        sign_in(other, password=NEW_PASSWORD)
        token = form_token(other.get("/signin").text)
        old = other.post(
            "/signin", data={"username": "ada", "password": PASSWORD, "csrf_token": token}
        )
        assert old.status_code == 401


def test_admin_signs_a_member_out_everywhere_from_the_command_line(
    site: FastAPI, browser: TestClient, cli: CliRunner
) -> None:
    sign_in(browser)
    result = cli.invoke(cli_app, ["users", "sign-out", "ADA"])
    assert result.exit_code == 0, result.output
    assert "ada" in result.output
    assert not signed_in(browser)
    missing = cli.invoke(cli_app, ["users", "sign-out", "nobody"])
    assert missing.exit_code == 1 and "No member" in missing.output


def test_admin_sets_a_new_password_from_the_command_line(
    site: FastAPI, browser: TestClient, cli: CliRunner
) -> None:
    sign_in(browser)
    result = cli.invoke(
        cli_app, ["users", "password", "ada"], input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert not signed_in(browser)
    sign_in(browser, password=NEW_PASSWORD)
    short = cli.invoke(cli_app, ["users", "password", "ada"], input="short\nshort\n")
    assert short.exit_code == 1 and "at least 8" in short.output
