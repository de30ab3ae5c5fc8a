"""A sign-in flood against ``broadsheet serve``: a worker's peak memory and whether pages answer.

N sign-in attempts (default 200) arrive at once, each from its own address (X-Forwarded-For
through a trusted local proxy, as a botnet would look behind a reverse proxy, so no per-address
limit cuts the flood short), half with the right password of one of 20 members and half
with a wrong one. Each attempt first fetches the form for its CSRF token; then all posts go out
together. While they run, the script samples the resident memory of every server process
(psutil, every 20 ms) and asks for ``/healthz`` and ``/`` every 100 ms.

Before hashing was bounded, 120 such attempts grew one worker from 1.3 to 5.9 GB; argon2id
holds 64 MiB per hash in progress.

    python bench/signin_flood.py                    # temporary store, 200 attempts, 1 worker
    python bench/signin_flood.py --attempts 400 --workers 2 --warm-up
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil

from broadsheet.community.accounts import create_member
from broadsheet.community.passwords import HASH_SLOTS
from broadsheet.db.engine import open_store
from web_load import free_port, start_server

MEMBERS, PASSWORD = 20, "flood member password"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class MemorySampler(threading.Thread):
    """Peak resident memory of each process in the server's tree (the workers)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.root, self.peak, self.stop = psutil.Process(pid), {}, threading.Event()

    def rss(self) -> dict[int, int]:
        sizes = {}
        try:
            processes = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:  # the server has stopped
            return sizes
        for process in processes:
            with contextlib.suppress(psutil.Error):
                sizes[process.pid] = process.memory_info().rss
        return sizes

    def run(self) -> None:
        while not self.stop.is_set():
            for pid, size in self.rss().items():
                self.peak[pid] = max(self.peak.get(pid, 0), size)
            time.sleep(0.02)


async def attempt_forms(base: str, count: int) -> list[tuple[httpx.AsyncClient, str]]:
    """One client per attempt, each with its own session, address and CSRF token."""

    async def form(n: int) -> tuple[httpx.AsyncClient, str]:
        address = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
        client = httpx.AsyncClient(base_url=base, headers={"X-Forwarded-For": address}, timeout=120)
        page = await client.get("/signin")
        return client, TOKEN.search(page.text).group(1)

    # all at once, so that no connection idles past the server's keep-alive before its post
    return list(await asyncio.gather(*(form(n) for n in range(count))))


async def sign_in(client: httpx.AsyncClient, token: str, n: int) -> tuple[int | str, float]:
    password = PASSWORD if n % 2 == 0 else f"wrong password {n}"
    data = {"username": f"member{n % MEMBERS}", "password": password, "csrf_token": token}
    started = time.perf_counter()
    try:
        status: int | str = (await client.post("/signin", data=data)).status_code
    except httpx.HTTPError as exc:
        status = type(exc).__name__
    return status, time.perf_counter() - started


async def probe(base: str, stop: asyncio.Event) -> dict[str, list[float]]:
    """Latencies of other pages while the flood runs (inf: no answer within 10 s)."""
    latencies: dict[str, list[float]] = {"/healthz": [], "/": []}
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        while not stop.is_set():
            for path, seen in latencies.items():
                started = time.perf_counter()
                try:
                    ok = (await client.get(path)).status_code == 200
                except httpx.HTTPError:
                    ok = False
                seen.append(time.perf_counter() - started if ok else float("inf"))
            await asyncio.sleep(0.1)
    return latencies


async def flood(base: str, attempts: int) -> tuple[list[tuple[int, float]], dict, float]:
    clients = await attempt_forms(base, attempts)
    stop = asyncio.Event()
    prober = asyncio.create_task(probe(base, stop))
    started = time.perf_counter()
    results = await asyncio.gather(*(sign_in(c, t, n) for n, (c, t) in enumerate(clients)))
    seconds = time.perf_counter() - started
    await asyncio.sleep(0.3)
    stop.set()
    latencies = await prober
    for client, _ in clients:
        await client.aclose()
    return list(results), latencies, seconds


def mib(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--attempts", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--warm-up", action="store_true", help="load the search model first")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "flood.db"
        engine = open_store(f"sqlite:///{store}")
        for n in range(MEMBERS):
            create_member(engine, f"member{n}", PASSWORD)
        engine.dispose()
        warm_up = "--warm-up" if args.warm_up else "--no-warm-up"
        server = start_server(
            f"sqlite:///{store}",
            free_port(),
            args.workers,
            "--forwarded-allow-ips",
            "127.0.0.1",
            warm_up,
        )
        base = f"http://127.0.0.1:{server.args[server.args.index('--port') + 1]}"
        try:
            sampler = MemorySampler(server.pid)
            before = sampler.rss()
            sampler.start()
            results, latencies, seconds = asyncio.run(flood(base, args.attempts))
            sampler.stop.set()
            sampler.join()
        finally:
            server.terminate()
            server.wait(30)
            if server.returncode not in (0, -15):
                print(store.with_suffix(".log").read_text()[-3000:], file=sys.stderr)

    statuses = Counter(status for status, _ in results)
    times = sorted(elapsed for _, elapsed in results)
    print(f"{args.attempts} concurrent sign-ins, {args.workers} worker(s), {HASH_SLOTS} hashing")
    print(f"slots per process, {os.cpu_count()} CPUs; all answered in {seconds:.1f} s")
    print("statuses:", ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items(), key=str)))
    print(
        f"sign-in latency: p50 {statistics.median(times):.2f} s, "
        f"p95 {times[int(0.95 * (len(times) - 1))]:.2f} s, max {times[-1]:.2f} s"
    )
    for pid, peak in sorted(sampler.peak.items()):
        print(f"process {pid}: RSS {mib(before.get(pid, 0))} before, peak {mib(peak)}")
    for path, seen in latencies.items():
        answered = [s for s in seen if s != float("inf")]
        worst = max(seen) if seen else float("nan")
        print(
            f"{path} during the flood: {len(answered)}/{len(seen)} answered, "
            f"p50 {statistics.median(answered) * 1000:.0f} ms, max {worst * 1000:.0f} ms"
        )
    if not statuses.keys() <= {303, 401, 429, 503}:
        raise SystemExit(f"unexpected answers: {statuses}")


if __name__ == "__main__":
    main()
