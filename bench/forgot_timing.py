"""How ``/password/forgot`` answers for a real account and an unknown one, against
``broadsheet serve``, with the mail server down and with it hung.

"Down": nothing listens on the mail port (the connection is refused at once). "Hung": a
server takes the connection and never says a word, so a sender waits for its timeout
(``smtp_timeout``, 30 s by default). For each, N requests ask for a reset of the real account
(by username, its address verified) and N for an unknown one, taking turns; each request comes
from its own address (``X-Forwarded-For`` through a trusted local proxy) so that the limit per
client does not answer instead. Only the POST is timed; the form (CSRF token) is fetched first.

Any difference between the two kinds of answer (status, body, time) tells who has an account.

    python bench/forgot_timing.py                  # 50 requests of each kind, both servers
    python bench/forgot_timing.py --requests 5 --modes down
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
from sqlalchemy import update

from broadsheet.community.accounts import create_member
from broadsheet.db.engine import open_store
from broadsheet.db.schema import users
from web_load import free_port, start_server

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
KNOWN, UNKNOWN = "ada", "nobody-by-that-name"


@contextlib.contextmanager
def mail_server(mode: str) -> Iterator[int]:
    """The port of a mail server that is down (nothing listens) or hung (never answers)."""
    if mode == "down":
        yield free_port()
        return
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    held, done = [], threading.Event()

    def take() -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        thread.join(5)
        listener.close()
        for connection in held:
            connection.close()


def ask(base: str, who: str, n: int) -> tuple[int, float, str]:
    """One request for a reset, from its own address: status, seconds, body."""
    address = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
    with httpx.Client(base_url=base, headers={"X-Forwarded-For": address}, timeout=120) as client:
        token = TOKEN.search(client.get("/password/forgot").text).group(1)
        started = time.perf_counter()
        answer = client.post("/password/forgot", data={"who": who, "csrf_token": token})
        seconds = time.perf_counter() - started
    return answer.status_code, seconds, answer.text.replace(token, "")  # the session's own


def percentile(times: list[float], share: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run(store: Path, mode: str, requests: int, smtp_timeout: float) -> dict[str, list]:
    answers: dict[str, list] = {KNOWN: [], UNKNOWN: []}
    with mail_server(mode) as port:
        os.environ["BROADSHEET_SMTP_HOST"] = "127.0.0.1"  # the server reads its settings here
        os.environ["BROADSHEET_SMTP_PORT"] = str(port)
        os.environ["BROADSHEET_SMTP_TIMEOUT"] = str(smtp_timeout)
        port = free_port()
        options = ("--forwarded-allow-ips", "127.0.0.1", "--no-warm-up")
        server = start_server(f"sqlite:///{store}", port, 1, *options)
        sent = 0
        try:
            for n in range(requests):
                for who in (KNOWN, UNKNOWN) if n % 2 == 0 else (UNKNOWN, KNOWN):
                    answers[who].append(ask(f"http://127.0.0.1:{port}", who, sent))
                    sent += 1
        finally:
            server.terminate()
            server.wait(30)
    return answers


def new_store(path: Path) -> Path:
    """A store holding one member, whose address is verified."""
    engine = open_store(f"sqlite:///{path}")
    member = create_member(engine, KNOWN, "a long enough password")
    with engine.begin() as connection:
        connection.execute(
            update(users)
            .where(users.c.id == member.id)
            .values(email="ada@example.org", email_verified_at=datetime(2024, 1, 1))
        )
    engine.dispose()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=50, help="of each kind, per server")
    parser.add_argument("--modes", nargs="+", choices=["down", "hung"], default=["down", "hung"])
    parser.add_argument("--smtp-timeout", type=float, default=30.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        print(f"{args.requests} requests of each kind per mail server, one worker, SQLite")
        print("| mail server | account | statuses | p50 | p99 | max |")
        print("|---|---|---|---:|---:|---:|")
        differs = []
        for mode in args.modes:
            store = new_store(Path(folder) / f"{mode}.db")  # limits counted afresh
            answers = run(store, mode, args.requests, args.smtp_timeout)
            for who, seen in answers.items():
                times = [seconds for _, seconds, _ in seen]
                statuses = Counter(status for status, _, _ in seen)
                shown = ", ".join(f"{n} × {code}" for code, n in sorted(statuses.items()))
                kind = "real" if who == KNOWN else "unknown"
                print(
                    f"| {mode} | {kind} | {shown} | {statistics.median(times) * 1000:.0f} ms | "
                    f"{percentile(times, 0.99) * 1000:.0f} ms | {max(times) * 1000:.0f} ms |"
                )
            bodies = {(status, body) for seen in answers.values() for status, _, body in seen}
            if len(bodies) != 1:
                differs.append(mode)
        if differs:
            print(f"answers differ between accounts with the mail server {', '.join(differs)}")
            sys.exit(1)
        print("every answer had the same status and body")


if __name__ == "__main__":
    main()
