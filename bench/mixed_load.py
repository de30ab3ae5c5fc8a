"""Many clients at once on a live server: errors, latency, and whether every vote was kept.

C clients (200 by default) run for D seconds (60) against ``broadsheet serve --workers 2``
on bench/web_load.py's synthetic store (10,000 papers with vectors). Half of them are visitors
who read the feed, paper pages and search results; the other half are signed-in members who
also upvote and withdraw upvotes (htmx POSTs with the CSRF token) on a small set of hot
papers, so that many members write the same rows at once. Each client is a separate
"address" behind a trusted reverse proxy (``--forwarded-allow-ips 127.0.0.1`` and its own
``X-Forwarded-For``), as a public instance sees its readers.

An error is any answer of 400 or above, or no answer within the timeout. After the run the
server stops and the store is read back: for every (member, paper) pair, the last
acknowledged vote state must be the stored one, and each paper's vote counter must equal its
stored votes.

    python bench/mixed_load.py                         # 200 clients, 60 s, 10,000 papers
    python bench/mixed_load.py --clients 20 --duration 5 --papers 400   # a quick check
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path

import httpx
import psutil
from sqlalchemy import func, select

from broadsheet.community.accounts import create_member
from broadsheet.db.engine import open_store
from broadsheet.db.schema import papers, users, votes
from search import _cpu_name
from web_load import build_store, free_port, sample_paths, start_server, wait_for_search

PASSWORD = "load member password"
HOT_PAPERS = 40
VISITOR_MIX = {"feed": 0.5, "paper": 0.35, "search": 0.15}
MEMBER_MIX = {"feed": 0.25, "paper": 0.25, "search": 0.1, "vote": 0.4}
PRESSED = re.compile(r'aria-pressed="(true|false)"')
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class NoCookies(DefaultCookiePolicy):
    """One HTTP client carries every simulated reader: each sends its own Cookie header."""

    def set_ok(self, cookie, request) -> bool:
        return False


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    error_samples: list[str] = field(default_factory=list)
    # (member id, paper id) -> the vote state of the last acknowledged answer
    acknowledged: dict[tuple[int, str], bool] = field(default_factory=dict)

    def error(self, action: str, what: str) -> None:
        self.errors[action] += 1
        if len(self.error_samples) < 10:
            self.error_samples.append(f"{action}: {what}")


def make_members(path: Path, count: int) -> dict[str, int]:
    """``count`` members (made once per store): username -> id."""
    engine = open_store(f"sqlite:///{path}")
    names = [f"load-{index:04d}" for index in range(count)]
    with engine.connect() as connection:
        existing = dict(
            connection.execute(
                select(users.c.username, users.c.id).where(users.c.username.in_(names))
            ).all()
        )
    for name in names:
        if name not in existing:
            existing[name] = create_member(engine, name, PASSWORD).id
    engine.dispose()
    return existing


def client_address(index: int) -> str:
    return f"10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}"


async def sign_in(client: httpx.AsyncClient, username: str, address: str) -> tuple[str, str]:
    """A session cookie and its CSRF token, signed in through the real form."""
    headers = {"X-Forwarded-For": address}
    page = await client.get("/signin", headers=headers)
    token = CSRF.search(page.text).group(1)
    cookie = "; ".join(f"{k}={v}" for k, v in page.cookies.items())
    answer = await client.post(
        "/signin",
        data={"username": username, "password": PASSWORD, "csrf_token": token},
        headers={**headers, "Cookie": cookie},
    )
    if answer.status_code != 303:
        raise SystemExit(f"{username} could not sign in: {answer.status_code}")
    cookie = "; ".join(f"{k}={v}" for k, v in answer.cookies.items())
    page = await client.get("/", headers={**headers, "Cookie": cookie})
    return cookie, CSRF.search(page.text).group(1)


async def run_load(
    base: str,
    paths: dict[str, list[str]],
    hot: list[str],
    members: dict[str, int],
    clients: int,
    duration: float,
    seed: int,
) -> tuple[Tally, float]:
    tally = Tally()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    names = sorted(members)
    sessions: dict[int, tuple[str, str, int]] = {}
    # signed in first, on connections of their own: none of them sits idle into the load
    async with httpx.AsyncClient(base_url=base, cookies=CookieJar(policy=NoCookies())) as client:
        for index in range(0, clients, 2):  # even clients are members
            name = names[index // 2]
            cookie, token = await sign_in(client, name, client_address(index))
            sessions[index] = (cookie, token, members[name])
    jar = CookieJar(policy=NoCookies())
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30, cookies=jar) as client:

        async def one_client(index: int) -> None:
            rng = random.Random(seed * 1000 + index)
            address = client_address(index)
            session = sessions.get(index)
            mix = MEMBER_MIX if session else VISITOR_MIX
            actions, weights = list(mix), list(mix.values())
            headers = {"X-Forwarded-For": address}
            if session:
                headers["Cookie"] = session[0]
            while time.perf_counter() < deadline:
                action = rng.choices(actions, weights)[0]
                started = time.perf_counter()
                try:
                    if action == "vote":
                        paper_id = rng.choice(hot)
                        answer = await client.post(
                            f"/papers/{paper_id}/vote",
                            headers={**headers, "HX-Request": "true", "X-CSRF-Token": session[1]},
                        )
                        if answer.status_code == 200:
                            pressed = PRESSED.search(answer.text)
                            if pressed is None:
                                tally.error(action, "no vote state in the answer")
                            else:
                                tally.acknowledged[(session[2], paper_id)] = (
                                    pressed.group(1) == "true"
                                )
                    else:
                        choices = paths[
                            {"feed": "/", "paper": "/papers/{id}", "search": "/search?q="}[action]
                        ]
                        answer = await client.get(rng.choice(choices), headers=headers)
                    if answer.status_code >= 400:
                        tally.error(action, f"{answer.status_code} {answer.text[:120]!r}")
                except httpx.HTTPError as exc:
                    cause = exc.__cause__ or exc.__context__
                    tally.error(
                        action,
                        f"{type(exc).__name__} after {time.perf_counter() - began:.1f} s "
                        f"({type(cause).__name__}: {cause}) {exc}",
                    )
                tally.latencies[action].append(time.perf_counter() - started)

        deadline = time.perf_counter() + duration
        began = time.perf_counter()
        await asyncio.gather(*(one_client(i) for i in range(clients)))
        return tally, time.perf_counter() - began


def check_votes(path: Path, tally: Tally) -> tuple[int, int, int]:
    """Acknowledged votes missing from the store, and papers whose counter is off."""
    engine = open_store(f"sqlite:///{path}")
    with engine.connect() as connection:
        stored = set(connection.execute(select(votes.c.user_id, votes.c.paper_id)).all())
        counted = dict(
            connection.execute(
                select(papers.c.id, papers.c.member_votes).where(papers.c.member_votes != 0)
            ).all()
        )
        real = dict(
            connection.execute(
                select(votes.c.paper_id, func.count()).group_by(votes.c.paper_id)
            ).all()
        )
    engine.dispose()
    lost = sum((pair in stored) != state for pair, state in tally.acknowledged.items())
    off = sum(
        1
        for paper_id in counted.keys() | real.keys()
        if counted.get(paper_id, 0) != real.get(paper_id, 0)
    )
    return len(tally.acknowledged), lost, off


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=10_000)
    parser.add_argument("--store", type=Path, help="SQLite file to build, or reuse if it has N")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    print(
        f"machine: {platform.machine()}, {_cpu_name()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; server: {args.workers} worker(s); "
        f"{args.clients} clients (half signed in) for {args.duration:g} s"
    )
    with tempfile.TemporaryDirectory() as scratch:
        path = args.store or Path(scratch) / "mixed.db"
        url = f"sqlite:///{path}"
        for step, seconds in build_store(url, Path(scratch), args.papers, args.seed).items():
            print(f"built: {step} {seconds:.1f} s")
        paths = sample_paths(url, args.seed)
        hot = [p.removeprefix("/papers/") for p in paths["/papers/{id}"][:HOT_PAPERS]]
        members = make_members(path, (args.clients + 1) // 2)
        port = free_port()
        server = start_server(url, port, args.workers, "--forwarded-allow-ips", "127.0.0.1")
        base = f"http://127.0.0.1:{port}"
        peak_rss = 0
        try:
            wait_for_search(base, paths["/search?q="][0])
            process = psutil.Process(server.pid)

            async def sample_memory(stop: asyncio.Event) -> None:
                nonlocal peak_rss
                while not stop.is_set():
                    tree = [process, *process.children(recursive=True)]
                    peak_rss = max(peak_rss, max(p.memory_info().rss for p in tree))
                    await asyncio.sleep(0.5)

            async def measured() -> tuple[Tally, float]:
                stop = asyncio.Event()
                sampler = asyncio.create_task(sample_memory(stop))
                try:
                    return await run_load(
                        base, paths, hot, members, args.clients, args.duration, args.seed
                    )
                finally:
                    stop.set()
                    await sampler

            tally, elapsed = asyncio.run(measured())
        finally:
            server.terminate()
            server.wait(60)
        acknowledged, lost, off = check_votes(path, tally)

    total = sum(len(v) for v in tally.latencies.values())
    errors = sum(tally.errors.values())
    print(f"{'action':<8} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for action in ("feed", "paper", "search", "vote"):
        times = sorted(tally.latencies.get(action, []))
        if not times:
            continue
        p50, p99 = (times[min(len(times) - 1, int(q * len(times)))] * 1000 for q in (0.5, 0.99))
        print(
            f"{action:<8} {len(times):>9,} {len(times) / elapsed:>8.1f} {p50:>8.1f} "
            f"{p99:>8.1f} {tally.errors.get(action, 0):>7}"
        )
    print(f"all      {total:>9,} {total / elapsed:>8.1f}  errors: {errors}")
    print(f"largest worker RSS: {peak_rss / 2**20:,.0f} MiB")
    print(
        f"votes: {acknowledged:,} (member, paper) pairs acknowledged; "
        f"{lost} differ from the store; {off} papers with a wrong vote counter"
    )
    for sample in tally.error_samples:
        print("  error:", sample)
    if errors or lost or off:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
