"""The tokens that mailed links carry never reach ``broadsheet serve``'s access log, whose
lines name each request's route, status, time taken and id, as text or as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import Engine

from broadsheet.web.access_log import REDACTED, redact
from helpers import free_port, run_env

SECRET = "s3cretTokenValue.AbC-_"


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        (f"/password/reset?token={SECRET}", f"/password/reset?token={REDACTED}"),
        (f"/x?a=1&token={SECRET}&b=2", f"/x?a=1&token={REDACTED}&b=2"),
        (f"/x?TOKEN={SECRET}", f"/x?TOKEN={REDACTED}"),
        (
            f"/signin?next=%2Fpassword%2Freset%3Ftoken%3D{SECRET}%26a%3D1&then=x",
            f"/signin?next=%2Fpassword%2Freset%3Ftoken%3D{REDACTED}%26a%3D1&then=x",
        ),
        ("/search?q=tokens&csrf_token_hint=1", "/search?q=tokens&csrf_token_hint=1"),
        (f"/x?password={SECRET}&b=2", f"/x?password={REDACTED}&b=2"),
        (f"/x?new_password={SECRET}", f"/x?new_password={REDACTED}"),
        (f"/x?api_key={SECRET}&apikey={SECRET}", f"/x?api_key={REDACTED}&apikey={REDACTED}"),
        (f"/x?access_token={SECRET}", f"/x?access_token={REDACTED}"),
        (f"/x?client_secret={SECRET}", f"/x?client_secret={REDACTED}"),
        ("/search?q=password+secret&sort=key", "/search?q=password+secret&sort=key"),
        ("/c/abc?page=2", "/c/abc?page=2"),
    ],
)
def test_token_values_are_redacted_and_nothing_else(path: str, logged: str) -> None:
    assert redact(path) == logged


class Served:
    """A `broadsheet serve` subprocess's address, and its whole log once it has stopped."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.log = ""


@contextmanager
def serving(database_url: str, **env: str) -> Iterator[Served]:
    port = free_port()
    command = [sys.executable, "-m", "broadsheet.cli", "serve", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--no-warm-up"],
        env={**run_env(database_url), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    served = Served(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{served.base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
        yield served
    finally:
        server.terminate()
        served.log, _ = server.communicate(timeout=20)


def test_a_get_with_a_token_is_logged_without_it(store: Engine, database_url: str) -> None:
    with serving(database_url) as served:
        reset = httpx.get(f"{served.base}/password/reset?token={SECRET}")
        assert reset.status_code == 400
        httpx.get(f"{served.base}/settings/email/verify?token={SECRET}")
        httpx.get(f"{served.base}/signin?next=%2Fpassword%2Freset%3Ftoken%3D{SECRET}")
        httpx.get(f"{served.base}/papers/9999.99999?password={SECRET}")
    log = served.log
    request_id = reset.headers["X-Request-ID"]
    assert f'"GET /password/reset?token={REDACTED} HTTP/1.1" 400 /password/reset ' in log, log
    assert f"ms request_id={request_id}" in log
    assert f"/settings/email/verify?token={REDACTED}" in log
    assert f'/papers/9999.99999?password={REDACTED} HTTP/1.1" 404 /papers/{{paper_id}} ' in log
    assert SECRET not in log
    assert log.count('"GET /healthz HTTP/1.1" 200 /healthz ') >= 1  # one line per request


def test_with_log_format_json_every_line_is_a_json_object(store: Engine, database_url: str) -> None:
    with serving(database_url, BROADSHEET_LOG_FORMAT="json") as served:
        paper = httpx.get(f"{served.base}/papers/9999.99999", headers={"X-Request-ID": "live-1"})
        httpx.get(f"{served.base}/password/reset?token={SECRET}")
        httpx.get(f"{served.base}/api/me", headers={"Authorization": f"Bearer {SECRET}"})
        httpx.get(f"{served.base}/static/app.css?api_key={SECRET}")
    assert paper.headers["X-Request-ID"] == "live-1"
    lines = [json.loads(line) for line in served.log.splitlines() if line.strip()]
    assert all({"ts", "level", "logger", "message"} <= line.keys() for line in lines)
    requests = {line["request_id"]: line for line in lines if line["logger"] == "broadsheet.access"}
    logged = requests["live-1"]
    assert (logged["method"], logged["status"]) == ("GET", 404)
    assert logged["route"] == "/papers/{paper_id}"
    assert logged["path"] == "/papers/9999.99999" and logged["duration_ms"] >= 0
    assert {line["route"] for line in requests.values()} >= {"/api/me", "/static/{path}"}
    assert any(line["logger"] == "uvicorn.error" for line in lines)  # the server's own records
    assert any("believing X-Forwarded-For" in line["message"] for line in lines)
    assert SECRET not in served.log
