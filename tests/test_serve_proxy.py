"""``broadsheet serve`` believes X-Forwarded-For only from the proxies an admin lists."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from broadsheet.community import ratelimit
from helpers import free_port, run_env

PASSWORD = "long enough password"


@contextmanager
def serving(
    database_url: str,
    *options: str,
    trusted: str | None = None,
    port: int | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """A real ``broadsheet serve`` in a subprocess; yields its base URL.

    ``trusted`` goes in the environment as BROADSHEET_FORWARDED_ALLOW_IPS; ``env`` adds to it.
    """
    port = port or free_port()
    env = {**run_env(database_url), **(env or {})}
    env.pop("BROADSHEET_BASE_URL", None)
    env.pop("BROADSHEET_FORWARDED_ALLOW_IPS", None)
    env["FORWARDED_ALLOW_IPS"] = "*"  # uvicorn's own default must not matter
    if trusted is not None:
        env["BROADSHEET_FORWARDED_ALLOW_IPS"] = trusted
    command = [sys.executable, "-m", "broadsheet.cli", "serve", "--port", str(port)]
    command += ["--no-warm-up", "--no-access-log", *options]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start: {process.stderr.read()}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(20)


def sign_up_as(url: str, username: str, forwarded_for: str) -> int:
    """One sign-up from this machine, claiming to be ``forwarded_for``."""
    with httpx.Client(base_url=url, headers={"X-Forwarded-For": forwarded_for}) as client:
        page = client.get("/signup")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        data = {"username": username, "password": PASSWORD, "csrf_token": token}
        return client.post("/signup", data=data).status_code


def test_forwarded_for_is_ignored_by_default(store, database_url: str) -> None:
    with serving(database_url) as url:
        statuses = [sign_up_as(url, f"member{n}", f"198.51.100.{n}") for n in range(8)]
    allowed = ratelimit.SIGN_UPS.hits
    assert statuses == [303] * allowed + [429] * (8 - allowed)


def test_forwarded_for_is_honoured_from_a_listed_proxy(store, database_url: str) -> None:
    with serving(database_url, "--forwarded-allow-ips", "127.0.0.1") as url:
        statuses = [sign_up_as(url, f"member{n}", f"198.51.100.{n}") for n in range(8)]
        assert statuses == [303] * 8
        same = [sign_up_as(url, f"again{n}", "203.0.113.5") for n in range(6)]
    assert same.count(429) == 6 - ratelimit.SIGN_UPS.hits


def test_the_setting_is_read_from_the_environment(store, database_url: str) -> None:
    with serving(database_url, trusted="10.0.0.0/8, 127.0.0.0/8") as url:
        statuses = [sign_up_as(url, f"member{n}", f"198.51.100.{n}") for n in range(6)]
    assert statuses == [303] * 6


def test_a_mistyped_proxy_address_stops_serve(store, database_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "broadsheet.cli", "serve", "--forwarded-allow-ips", "127.0.0.l"],
        env=run_env(database_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "127.0.0.l" in result.stderr
