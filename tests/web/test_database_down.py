"""A store that cannot answer: pages, the API and htmx get 503 with Retry-After in their own
form, /readyz says so while /healthz stays 200, nothing hangs past the timeouts, and the site
answers again once the store does, without a restart.

On PostgreSQL a TCP proxy in front of the server is cut (connections refused) or frozen
(connections held, nothing answered: a stopped or hung server). SQLite has no server to stop:
its equivalent is the store held by another connection in exclusive locking mode, which
keeps every other connection out until it lets go (reads included, unlike a write lock in WAL
mode, which the last test shows). SQLite grants that mode only to a connection that is alone,
so this process's idle connections are closed first.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from broadsheet.config import Settings
from broadsheet.db.engine import open_store
from broadsheet.db.timeouts import ANSWER_MARGIN_S
from broadsheet.web.app import create_app
from broadsheet.web.unavailable import READY_WITHIN_S
from databases import ON_POSTGRES
from tcp_proxy import TcpProxy, postgres_proxy

PASSWORD = "pw-kept-out-of-logs"  # the embedded test server trusts local users: any password
TIMEOUTS = {"db_connect_timeout": 2, "db_statement_timeout": 1.0, "db_pool_timeout": 1.0}
SLACK_S = 3.0  # a loaded test machine
# a frozen server: a pooled connection's check (connect) fails, then a new connection (connect)
FROZEN_WITHIN_S = 2 * TIMEOUTS["db_connect_timeout"] + ANSWER_MARGIN_S + SLACK_S
PAGES = ["/", "/search?q=attention"]
API = ["/api/daily_papers", "/api/papers/2401.00001"]
UNAVAILABLE = "web.unavailable"


class Outage(Protocol):
    def stop(self) -> None: ...
    def freeze(self) -> None: ...
    def restore(self) -> None: ...


class ServerOutage:
    """PostgreSQL behind a proxy: stopped (refusing) or frozen (silent), then back."""

    def __init__(self, proxy: TcpProxy):
        self.proxy = proxy
        self.stopped = False

    def stop(self) -> None:
        self.proxy.cut()
        self.stopped = True

    def freeze(self) -> None:
        self.proxy.freeze()

    def restore(self) -> None:
        if self.stopped:
            self.proxy.restore()
            self.stopped = False
        self.proxy.thaw()


class HeldStore:
    """A SQLite store that another connection holds exclusively, then lets go."""

    def __init__(self, path: str, app: FastAPI, database_url: str):
        self.path, self.app, self.database_url = path, app, database_url
        self.holder: sqlite3.Connection | None = None

    def stop(self) -> None:
        for engine in (self.app.state.engine, open_store(self.database_url)):
            engine.dispose()  # the process's idle connections: the mode wants the store alone
        holder = sqlite3.connect(self.path, isolation_level=None, timeout=10)
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE store_version SET version = version")
        self.holder = holder

    freeze = stop  # nothing else stops a library in this process from answering

    def restore(self) -> None:
        if self.holder is not None:
            self.holder.execute("ROLLBACK")
            self.holder.close()
            self.holder = None


@pytest.fixture
def site(database_url: str) -> Iterator[tuple[TestClient, Outage]]:
    """A client of an app with short store timeouts, and the outage its store can suffer."""
    if not ON_POSTGRES:
        app = create_app(Settings(database_url=database_url, secret_key="test", **TIMEOUTS))
        outage = HeldStore(make_url(database_url).database or "", app, database_url)
        with TestClient(app) as client:
            yield client, outage
        outage.restore()
        return
    password = make_url(database_url).password or PASSWORD  # a given server's own, else ours
    with postgres_proxy(database_url, password=password) as (proxy, through):
        settings = Settings(database_url=through, secret_key="test", **TIMEOUTS)
        with TestClient(create_app(settings)) as client:
            yield client, ServerOutage(proxy)


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text[:300]
    assert int(response.headers["Retry-After"]) > 0


def assert_unavailable_page(response: httpx.Response) -> None:
    assert_unavailable(response)
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert html.lstrip().startswith("<!doctype html>")  # the site's layout, not a bare line
    assert 'role="search"' in html and re.search(r'<a [^>]*href="/"', html)
    assert "try again" in html
    assert "Content-Security-Policy" in response.headers


def assert_unavailable_json(response: httpx.Response) -> None:
    assert_unavailable(response)
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"detail"} and "try again" in response.json()["detail"]


def assert_site_answers(client: TestClient) -> None:
    for path in PAGES:
        assert client.get(path).status_code == 200, path
    assert client.get("/api/daily_papers").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ok"


def test_a_stopped_database_answers_503_in_each_form_and_the_site_recovers(
    site: tuple[TestClient, Outage], caplog: pytest.LogCaptureFixture
) -> None:
    client, outage = site
    assert_site_answers(client)
    caplog.set_level(logging.WARNING)
    outage.stop()

    for path in PAGES:
        assert_unavailable_page(client.get(path))
    for path in API:
        assert_unavailable_json(client.get(path))
    htmx = client.get("/", headers={"HX-Request": "true"})
    assert_unavailable(htmx)
    assert htmx.headers["content-type"].startswith("text/plain") and "try again" in htmx.text
    assert client.get("/healthz").status_code == 200  # alive: the process serves
    ready = client.get("/readyz")
    assert_unavailable(ready)
    assert ready.json()["status"] == "unavailable"

    warned = [r for r in caplog.records if r.name.endswith(UNAVAILABLE)]
    assert all(r.levelno == logging.WARNING and not r.exc_info for r in warned)
    messages = [r.getMessage() for r in warned]
    failed = [m for m in messages if m.startswith("database unavailable (GET ")]
    assert len(failed) == len(PAGES) + len(API) + 1  # one line per request, no traceback
    assert len([m for m in messages if m.startswith("not ready")]) == 1
    logged = "\n".join(r.getMessage() for r in caplog.records)
    password = make_url(client.app.state.settings.database_url).password or PASSWORD
    assert password not in logged and "://" not in logged

    outage.restore()
    assert_site_answers(client)  # the same app, without a restart


def test_a_frozen_database_answers_503_within_the_timeouts(
    site: tuple[TestClient, Outage],
) -> None:
    client, outage = site
    assert_site_answers(client)  # the pool holds connections to the server
    outage.freeze()
    try:
        for path, check in [("/", assert_unavailable_page), (API[0], assert_unavailable_json)]:
            started = time.monotonic()
            check(client.get(path))
            assert time.monotonic() - started < FROZEN_WITHIN_S, path
        started = time.monotonic()
        assert_unavailable(client.get("/readyz"))
        assert time.monotonic() - started < READY_WITHIN_S + SLACK_S
        assert client.get("/healthz").status_code == 200
    finally:
        outage.restore()
    assert_site_answers(client)


def test_readyz_says_whether_search_is_warm_but_answers_by_the_store(
    site: tuple[TestClient, Outage],
) -> None:
    client, _ = site
    assert client.get("/readyz").json() == {"status": "ok", "search": "ready"}
    client.app.state.search_ready.clear()  # this worker's model still loading
    assert client.get("/readyz").json() == {"status": "ok", "search": "warming up"}
    assert client.get("/healthz").json() == {"status": "ok"}


def test_all_connections_in_use_answers_busy_after_the_pool_timeout(
    site: tuple[TestClient, Outage],
) -> None:
    client, _ = site
    engine = client.app.state.engine
    held = []
    try:
        while len(held) < engine.pool.size() + engine.pool._max_overflow:
            held.append(engine.connect())
        started = time.monotonic()
        response = client.get("/")
        assert time.monotonic() - started < TIMEOUTS["db_pool_timeout"] + SLACK_S
        assert_unavailable_page(response)
        assert "busy" in response.text
        assert_unavailable_json(client.get(API[0]))
    finally:
        for connection in held:
            connection.close()
    assert_site_answers(client)


@contextmanager
def write_lock_held(path: str) -> Iterator[None]:
    """Another connection mid-write: SQLite's one writer at a time (a long import, say)."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite's single writer; PostgreSQL writers share")
def test_on_sqlite_a_held_write_lock_keeps_reads_and_answers_writes_busy(
    site: tuple[TestClient, Outage], database_url: str
) -> None:
    client, _ = site
    form = {"username": "reader", "password": "correct horse battery"}
    with write_lock_held(make_url(database_url).database or ""):
        assert_site_answers(client)  # readers never wait for a writer in WAL mode
        started = time.monotonic()
        response = client.post("/signup", data={**form, "csrf_token": csrf(client)})
        assert time.monotonic() - started < TIMEOUTS["db_statement_timeout"] + SLACK_S
        assert_unavailable_page(response)
        assert "busy" in response.text
    response = client.post("/signup", data={**form, "csrf_token": csrf(client)})
    assert response.status_code in (200, 303), response.text[:300]


def csrf(client: TestClient) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/signup").text)
    assert match, "no CSRF token on the sign-up form"
    return match.group(1)
