"""A 10,000-paper collection's pages over a live server: latency, and a worker's memory under
a burst.

Builds (or reuses, with --store) a SQLite store of N synthetic papers (bench/snapshot_gen.py,
imported with the real importer) and one member who saved them all into one public
collection. Then it starts ``broadsheet serve`` (one worker, behind a trusted local proxy so
that each visitor has its own address, as on a public instance, and no per-address limit cuts
the run short) and times, over R requests each, a visitor's ``GET /c/{token}`` and the owner's
``GET /library?collection=…`` (signed in). Last, B visitors ask for the shared page at once
while the resident memory of every server process is sampled (psutil, every 10 ms): the
growth is the peak less the size before the burst. It also checks that one address alone is
refused (429) once its views are spent.

    python bench/collection_page.py                        # 10,000 papers, 200 requests, 24 at once
    python bench/collection_page.py --papers 10000 --store /tmp/collection-10k.db
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import Engine, func, insert, select

from broadsheet.community.accounts import create_member, find_member
from broadsheet.community.library import Visibility, create_collection, member_collections
from broadsheet.db.engine import open_store
from broadsheet.db.schema import collection_papers, papers, saved_papers
from broadsheet.ingest.runner import import_file
from signin_flood import MemorySampler, mib
from snapshot_gen import write_snapshot
from web_load import free_port, start_server

OWNER, PASSWORD = "collector", "collector password"
NAME = "Everything"


def build(engine: Engine, count: int, seed: int) -> None:
    """N papers, all saved by the owner and in their public collection (once per store)."""
    with engine.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(papers)).scalar_one()
    if stored < count:
        with tempfile.TemporaryDirectory() as folder:
            print(f"generating and importing {count:,} papers ...", file=sys.stderr)
            import_file(engine, write_snapshot(Path(folder) / "snapshot.jsonl", count, seed))
    with engine.connect() as connection:
        if find_member(connection, OWNER) is not None:
            return
    member = create_member(engine, OWNER, PASSWORD)
    made = create_collection(engine, member, NAME, Visibility.public)
    start = datetime(2025, 1, 1)
    with engine.begin() as connection:
        ids = connection.execute(select(papers.c.id).order_by(papers.c.seq)).scalars().all()
        saved = [
            {"user_id": member.id, "paper_id": p, "saved_at": start - timedelta(seconds=i)}
            for i, p in enumerate(ids)
        ]
        inside = [
            {"collection_id": made.id, "paper_id": p, "added_at": start - timedelta(seconds=i)}
            for i, p in enumerate(ids)
        ]
        for at in range(0, len(ids), 5000):
            connection.execute(insert(saved_papers), saved[at : at + 5000])
            connection.execute(insert(collection_papers), inside[at : at + 5000])


def percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered) * 1000, ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000


def address(n: int) -> dict[str, str]:
    return {"X-Forwarded-For": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"}


def timed(client: httpx.Client, path: str, headers: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    answer = client.get(path, headers=headers)
    elapsed = time.perf_counter() - started
    if answer.status_code != 200:
        raise SystemExit(f"GET {path}: {answer.status_code} {answer.text[:300]}")
    return elapsed


def signed_in(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=600, headers=address(250_000))
    form = client.get("/signin").text
    token = form.split('name="csrf_token" value="')[1].split('"')[0]
    data = {"username": OWNER, "password": PASSWORD, "csrf_token": token}
    if client.post("/signin", data=data).status_code != 303:
        raise SystemExit("the owner could not sign in")
    return client


def burst(base: str, path: str, size: int, sampler: MemorySampler) -> tuple[list[float], int]:
    """``size`` visitors at once; their times, and the most any server process grew."""
    clients = [httpx.Client(base_url=base, timeout=600) for _ in range(size)]
    ready = threading.Barrier(size)

    def visit(n: int) -> float:
        ready.wait()
        return timed(clients[n], path, address(100_000 + n))

    before = sampler.rss()
    sampler.start()
    with ThreadPoolExecutor(size) as pool:
        times = list(pool.map(visit, range(size)))
    sampler.stop.set()
    sampler.join()
    for client in clients:
        client.close()
    growth = max((peak - before.get(pid, peak) for pid, peak in sampler.peak.items()), default=0)
    return times, growth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=10_000, help="papers in the collection")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page")
    parser.add_argument("--parallel", type=int, default=24, help="visitors in the burst")
    parser.add_argument("--store", type=Path, help="SQLite file to build, or reuse")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        path = args.store or Path(folder) / "collection.db"
        url = f"sqlite:///{path}"
        engine = open_store(url)
        build(engine, args.papers, args.seed)
        with engine.connect() as connection:
            member = find_member(connection, OWNER)
            [collection] = [c for c in member_collections(connection, member.id) if c.name == NAME]
        engine.dispose()
        print(f"store: {path.name}; collection of {collection.papers:,} papers")
        port = free_port()
        options = ("--forwarded-allow-ips", "127.0.0.1", "--no-warm-up")
        server = start_server(url, port, 1, *options)
        base = f"http://127.0.0.1:{port}"
        shared = f"/c/{collection.share_token}"
        own = f"/library?collection={collection.id}"
        try:
            visitor, owner = httpx.Client(base_url=base, timeout=600), signed_in(base)
            for n in range(3):  # warm: templates compiled, connections open
                timed(visitor, shared, address(200_000 + n))
                timed(owner, own)
            print(f"{'page':<34} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8}")
            for label, client, page, headers in (
                ("GET /c/{token} (visitor)", visitor, shared, address),
                ("GET /library?collection= (owner)", owner, own, lambda n: None),
            ):
                times = [timed(client, page, headers(n)) for n in range(args.requests)]
                p50, p99 = percentiles(times)
                print(f"{label:<34} {args.requests:>8} {p50:>8.1f} {p99:>8.1f}")
            sampler = MemorySampler(server.pid)
            times, growth = burst(base, shared, args.parallel, sampler)
            p50, p99 = percentiles(times)
            print(
                f"{args.parallel} visitors at once: p50 {p50:.0f} ms, slowest "
                f"{max(times) * 1000:.0f} ms; worker RSS grew {mib(growth)} "
                f"(peak {mib(max(sampler.peak.values()))})"
            )
            one = address(300_000)
            answers = [visitor.get(shared, headers=one).status_code for _ in range(200)]
            allowed = answers.index(429) if 429 in answers else None
            print(  # the limit counts in fixed windows: a run across a window's end sees more
                f"one address: refused (429) after {allowed} views in a row"
                if allowed is not None
                else "one address: never refused in 200 views"
            )
            visitor.close()
            owner.close()
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
