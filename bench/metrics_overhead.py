"""What ``BROADSHEET_METRICS_ENABLED`` costs a request, and what one ``/metrics`` scrape costs.

Builds (or reuses, with --store) a SQLite store of N synthetic papers (bench/snapshot_gen.py,
imported with the real importer), then starts two ``broadsheet serve`` processes on it (one
worker each, no model warm-up), one with metrics off and one with them on. Each round sends R
requests to each page on both servers in turn, one request at a time (off on, on off, off
on, ...), so the machine's drift falls on both alike. Pages: ``/``, a paper's page, a keyword
search through the API (the store has no vectors: keywords only) and ``/healthz``. Then it
times ``/metrics`` on the server with metrics on: the first scrape (the store's gauges read
from the store), the next ones within the gauges' cache time (cached), and, with --cold K, K
more each after waiting out that cache time.

    python bench/metrics_overhead.py                      # 5,000 papers, 10 rounds of 50, 3 cold
    python bench/metrics_overhead.py --papers 300 --rounds 2 --requests 5 --cold 0
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

from broadsheet.db.engine import open_store
from broadsheet.db.schema import papers
from broadsheet.ingest.runner import import_file
from broadsheet.metrics import STORE_TTL
from snapshot_gen import write_snapshot
from web_load import free_port, start_server

QUERY = "neural network"


def serve(url: str, metrics: bool) -> tuple[str, object]:
    """A one-worker server with metrics on or off; its base address and process."""
    os.environ["BROADSHEET_METRICS_ENABLED"] = "true" if metrics else "false"
    try:
        port = free_port()
        return f"http://127.0.0.1:{port}", start_server(url, port, 1, "--no-warm-up")
    finally:
        del os.environ["BROADSHEET_METRICS_ENABLED"]


def timed(client: httpx.Client, path: str) -> float:
    started = time.perf_counter()
    answer = client.get(path)
    elapsed = time.perf_counter() - started
    if answer.status_code != 200:
        raise SystemExit(f"GET {path}: {answer.status_code} {answer.text[:300]}")
    return elapsed


def p(times: list[float], share: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=10, help="rounds over the pages")
    parser.add_argument("--requests", type=int, default=50, help="requests per page per round")
    parser.add_argument("--scrapes", type=int, default=20, help="cached /metrics scrapes")
    parser.add_argument("--cold", type=int, default=3, help="scrapes after the cache expires")
    parser.add_argument("--store", type=Path, help="SQLite file to build, or reuse")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        path = args.store or Path(folder) / "metrics.db"
        url = f"sqlite:///{path}"
        engine = open_store(url)
        with engine.connect() as connection:
            stored = connection.execute(select(func.count()).select_from(papers)).scalar_one()
        if stored < args.papers:
            print(f"generating and importing {args.papers:,} papers ...", file=sys.stderr)
            import_file(engine, write_snapshot(Path(folder) / "snap.jsonl", args.papers, args.seed))
        with engine.connect() as connection:
            count = connection.execute(select(func.count()).select_from(papers)).scalar_one()
            paper = connection.execute(select(papers.c.id).order_by(papers.c.seq)).scalar()
        engine.dispose()
        pages = {
            "/": "/",
            "/papers/{id}": f"/papers/{paper}",
            "/api/papers/search?q=": f"/api/papers/search?q={QUERY.replace(' ', '+')}",
            "/healthz": "/healthz",
        }
        print(f"store: {count:,} papers; {args.rounds} rounds x {args.requests} requests a page")

        servers: dict[str, tuple[str, object]] = {}
        clients: dict[str, httpx.Client] = {}
        try:
            for name, metrics in (("off", False), ("on", True)):
                servers[name] = serve(url, metrics)
                clients[name] = httpx.Client(base_url=servers[name][0], timeout=120)
            for client in clients.values():  # warm: templates compiled, connections open
                for path_ in pages.values():
                    for _ in range(3):
                        timed(client, path_)
            times = {(name, page): [] for name in servers for page in pages}
            for round_ in range(args.rounds):
                for page, path_ in pages.items():
                    for n in range(args.requests):
                        order = ("off", "on") if (round_ + n) % 2 == 0 else ("on", "off")
                        for name in order:
                            times[name, page].append(timed(clients[name], path_))

            print()
            head = f"{'page':<24} {'off req/s':>9} {'on req/s':>9} {'off p50/p95 ms':>15}"
            print(f"{head} {'on p50/p95 ms':>15} {'p50 +ms':>8} {'mean +%':>8}")
            for page in pages:
                off, on = times["off", page], times["on", page]
                p50_off, p50_on = statistics.median(off) * 1000, statistics.median(on) * 1000
                print(
                    f"{page:<24} {len(off) / sum(off):>9,.0f} {len(on) / sum(on):>9,.0f} "
                    f"{f'{p50_off:.2f} / {p(off, 0.95):.2f}':>15} "
                    f"{f'{p50_on:.2f} / {p(on, 0.95):.2f}':>15} "
                    f"{p50_on - p50_off:>+8.2f} {(sum(on) / sum(off) - 1) * 100:>+8.1f}"
                )

            refused = clients["off"].get("/metrics").status_code
            first = timed(clients["on"], "/metrics")
            body = clients["on"].get("/metrics").text
            cached = [timed(clients["on"], "/metrics") for _ in range(args.scrapes)]
            cold = []
            for _ in range(args.cold):
                time.sleep(STORE_TTL + 0.5)
                cold.append(timed(clients["on"], "/metrics"))
            gauges = sum(line.startswith("broadsheet_") for line in body.splitlines())
            print()
            print(f"/metrics with metrics off: {refused} (expected 404)")
            print(f"/metrics: {len(body):,} bytes, {gauges} broadsheet_ samples")
            print(f"first scrape (store gauges read): {first * 1000:.1f} ms")
            if cold:
                shown = ", ".join(f"{t * 1000:.1f}" for t in cold)
                print(f"after the {STORE_TTL:.0f} s cache expired (store read again): {shown} ms")
            if cached:
                print(
                    f"cached ({len(cached)} scrapes): p50 {statistics.median(cached) * 1000:.1f} "
                    f"ms, p95 {p(cached, 0.95):.1f} ms"
                )
        finally:
            for client in clients.values():
                client.close()
            for _, process in servers.values():
                process.terminate()
                process.wait(30)


if __name__ == "__main__":
    main()
