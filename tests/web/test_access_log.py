"""The tokens that mailed links carry never reach ``broadsheet serve``'s access log."""

from __future__ import annotations

import subprocess
import sys
import time

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
        ("/c/abc?page=2", "/c/abc?page=2"),
    ],
)
def test_token_values_are_redacted_and_nothing_else(path: str, logged: str) -> None:
    assert redact(path) == logged


def test_a_get_with_a_token_is_logged_without_it(store: Engine, database_url: str) -> None:
    port = free_port()
    command = [sys.executable, "-m", "broadsheet.cli", "serve", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--no-warm-up"],
        env=run_env(database_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
        assert httpx.get(f"{base}/password/reset?token={SECRET}").status_code == 400
        httpx.get(f"{base}/settings/email/verify?token={SECRET}")
        httpx.get(f"{base}/signin?next=%2Fpassword%2Freset%3Ftoken%3D{SECRET}")
    finally:
        server.terminate()
        log, _ = server.communicate(timeout=20)
    assert f'"GET /password/reset?token={REDACTED} HTTP/1.1" 400' in log, log
    assert f"/settings/email/verify?token={REDACTED}" in log
    assert SECRET not in log
