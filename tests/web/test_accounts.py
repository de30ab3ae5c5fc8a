"""Sign-up and sign-in under attack: limits per address, delays per (name, address), busy."""

from __future__ import annotations

import time
from contextlib import ExitStack

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from broadsheet.community import ratelimit
from broadsheet.community.accounts import create_member
from broadsheet.community.passwords import HASH_SLOTS, hashing_slot
from broadsheet.config import Settings
from broadsheet.web.app import create_app
from web.conftest import form_token

PASSWORD = "long enough password"


@pytest.fixture
def site(store, database_url: str) -> FastAPI:
    create_member(store, "ada", PASSWORD)
    return create_app(Settings(database_url=database_url, secret_key="test-secret"))


def client_at(site: FastAPI, address: str) -> TestClient:
    return TestClient(site, client=(address, 40000))


def post_form(client: TestClient, path: str, username: str, password: str) -> httpx.Response:
    token = form_token(client.get(path).text)
    return client.post(
        path,
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )


def test_wrong_passwords_from_one_address_do_not_lock_the_owner_out(site: FastAPI) -> None:
    attacker = client_at(site, "203.0.113.7")
    statuses = [post_form(attacker, "/signin", "ada", f"guess {n}").status_code for n in range(20)]
    assert statuses[: ratelimit.SIGN_INS.hits] == [401] * ratelimit.SIGN_INS.hits
    assert statuses[-1] == 429  # the attacker is slowed down...
    owner = client_at(site, "198.51.100.20")
    assert post_form(owner, "/signin", "ada", PASSWORD).status_code == 303  # ...not the owner


def test_delays_hold_even_the_right_password_from_the_guessing_address(site: FastAPI) -> None:
    attacker = client_at(site, "203.0.113.7")
    for n in range(ratelimit.SIGN_INS.hits):
        assert post_form(attacker, "/signin", "ada", f"guess {n}").status_code == 401
    held = post_form(attacker, "/signin", "ada", PASSWORD)
    assert held.status_code == 429
    assert 0 < int(held.headers["Retry-After"]) <= ratelimit.SIGN_INS.seconds
    assert "Too many sign in attempts" in held.text


def test_a_success_clears_the_failures_of_that_address(site: FastAPI) -> None:
    owner = client_at(site, "198.51.100.20")
    for _ in range(2):
        for n in range(ratelimit.SIGN_INS.hits - 1):
            assert post_form(owner, "/signin", "ada", f"typo {n}").status_code == 401
        assert post_form(owner, "/signin", "ada", PASSWORD).status_code == 303
        owner.cookies.clear()


def test_sign_ups_past_the_limit_get_429_with_retry_after(site: FastAPI) -> None:
    client = client_at(site, "203.0.113.9")
    for n in range(ratelimit.SIGN_UPS.hits):
        assert post_form(client, "/signup", f"member{n}", PASSWORD).status_code == 303
        client.cookies.clear()
    refused = post_form(client, "/signup", "onemore", PASSWORD)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= ratelimit.SIGN_UPS.seconds


@pytest.mark.parametrize("path", ["/signin", "/signup"])
def test_busy_hashing_answers_503_with_retry_after_without_waiting_long(
    site: FastAPI, path: str
) -> None:
    client = client_at(site, "203.0.113.10")
    token = form_token(client.get(path).text)
    with ExitStack() as held:
        for _ in range(HASH_SLOTS):
            held.enter_context(hashing_slot())
        started = time.monotonic()
        busy = client.post(
            path, data={"username": "ada", "password": "wrong password", "csrf_token": token}
        )
        waited = time.monotonic() - started
    assert busy.status_code == 503
    assert int(busy.headers["Retry-After"]) > 0
    assert "try again in a few seconds" in busy.text
    assert waited < 5
    # a refusal for being busy is not a wrong password: nothing is held against the address
    for n in range(ratelimit.SIGN_INS.hits):
        assert post_form(client, "/signin", "ada", f"guess {n}").status_code == 401


def test_ipv6_clients_count_by_their_64_block(site: FastAPI) -> None:
    for n in range(ratelimit.SIGN_UPS.hits):
        client = client_at(site, f"2001:db8:1:2::{n + 1:x}")
        assert post_form(client, "/signup", f"member{n}", PASSWORD).status_code == 303
    rotated = client_at(site, "2001:db8:1:2:ffff::1")
    assert post_form(rotated, "/signup", "onemore", PASSWORD).status_code == 429
    elsewhere = client_at(site, "2001:db8:1:3::1")
    assert post_form(elsewhere, "/signup", "onemore", PASSWORD).status_code == 303
