"""The "for you" page's latency: a member with N signals on a store of many papers.

Builds (or reuses, with --store) a SQLite store of synthetic papers with clustered synthetic
vectors, as bench/search.py does, gives one member N signals (upvotes and saves, a tenth of
them dismissals) straight into the store, then times ``for_you_page`` (model fit, vector
search, rows) and the whole page through the app, for 50 and N signals side by side.

    python bench/for_you.py --papers 100000 --store /tmp/b100k.db
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select
from threadpoolctl import threadpool_limits

from broadsheet.community.accounts import create_member
from broadsheet.config import Settings
from broadsheet.db.engine import open_store
from broadsheet.db.schema import dismissed_papers, papers, saved_papers, votes
from broadsheet.digest import for_you as model_module
from broadsheet.feed.for_you import for_you_page
from broadsheet.ingest.runner import import_file
from broadsheet.search.embed import DEFAULT_MODEL
from broadsheet.search.vectors import save_graph
from broadsheet.web.app import create_app
from search import paper_count, store_synthetic_vectors, topic_centroids
from snapshot_gen import ZipfVocabulary, write_snapshot


def build(engine: Engine, count: int, seed: int) -> None:
    if paper_count(engine):
        return
    with tempfile.TemporaryDirectory() as folder:
        snapshot = Path(folder) / "snapshot.jsonl"
        print(f"generating and importing {count:,} papers ...", file=sys.stderr)
        vocabulary = ZipfVocabulary()
        write_snapshot(snapshot, count, vocabulary=vocabulary)
        import_file(engine, snapshot)
    print("storing synthetic vectors and the graph ...", file=sys.stderr)
    store_synthetic_vectors(engine, DEFAULT_MODEL, topic_centroids(vocabulary, seed), seed)
    save_graph(engine, DEFAULT_MODEL)


def member_with_signals(engine: Engine, name: str, signals: int, seed: int) -> int:
    """A member who upvoted, saved and dismissed ``signals`` random papers (a tenth dismissed)."""
    member = create_member(engine, name, "long enough password")
    rng = np.random.default_rng(seed)
    with engine.begin() as connection:
        ids = list(connection.execute(select(papers.c.id)).scalars())
        chosen = [ids[i] for i in rng.choice(len(ids), signals, replace=False)]
        dismissed, liked = chosen[: signals // 10], chosen[signals // 10 :]
        now = datetime.now(UTC).replace(tzinfo=None)
        at = [now - timedelta(minutes=n) for n in range(signals)]
        half = len(liked) // 2
        if liked[:half]:
            connection.execute(
                insert(votes),
                [
                    {"user_id": member.id, "paper_id": p, "created_at": t}
                    for p, t in zip(liked[:half], at, strict=False)
                ],
            )
        connection.execute(
            insert(saved_papers),
            [
                {"user_id": member.id, "paper_id": p, "saved_at": t}
                for p, t in zip(liked[half:], at, strict=False)
            ],
        )
        if dismissed:
            connection.execute(
                insert(dismissed_papers),
                [{"user_id": member.id, "paper_id": p, "dismissed_at": now} for p in dismissed],
            )
    return member.id


def percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered) * 1000, ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--signals", type=int, default=500)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--store", type=Path, help="SQLite file to build, or reuse")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    threadpool_limits(1)  # as `broadsheet serve` runs the math libraries in each worker

    with tempfile.TemporaryDirectory() as folder:
        path = args.store or Path(folder) / "for_you.db"
        url = f"sqlite:///{path}"
        engine = open_store(url)
        build(engine, args.papers, args.seed)
        stored = paper_count(engine)
        suffix = str(time.time_ns())[-6:]
        members = {
            size: member_with_signals(engine, f"bench{size}_{suffix}", size, args.seed + size)
            for size in sorted({50, args.signals})
        }
        model_module._samples.clear()
        started = time.perf_counter()
        model_module.shared_sample(engine, DEFAULT_MODEL)
        sample_ms = (time.perf_counter() - started) * 1000
        print(
            f"store: {stored:,} papers ({path.name}); shared negative sample drawn in "
            f"{sample_ms:.0f} ms (once per {model_module.SAMPLE_SECONDS:.0f} s per process)"
        )
        print(f"{'signals':>8} {'what':<28} {'p50 ms':>8} {'p99 ms':>8}")
        for size, member_id in members.items():
            for_you_page(engine, member_id, DEFAULT_MODEL)  # warm: the index loaded
            times = []
            for _ in range(args.requests):
                started = time.perf_counter()
                found = for_you_page(engine, member_id, DEFAULT_MODEL)
                times.append(time.perf_counter() - started)
            assert len(found.picks) == 20, found.notice
            p50, p99 = percentiles(times)
            print(f"{size:>8} {'for_you_page (20 picks)':<28} {p50:>8.1f} {p99:>8.1f}")
        app = create_app(Settings(database_url=url, secret_key="bench"))
        with TestClient(app) as client:
            for size in members:
                name = f"bench{size}_{suffix}"
                page = client.get("/signin")
                token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
                client.post(
                    "/signin",
                    data={
                        "username": name,
                        "password": "long enough password",
                        "csrf_token": token,
                    },
                )
                client.get("/for-you")
                times = []
                for _ in range(args.requests):
                    started = time.perf_counter()
                    answer = client.get("/for-you")
                    times.append(time.perf_counter() - started)
                assert answer.status_code == 200 and answer.text.count('class="meta because"') == 20
                p50, p99 = percentiles(times)
                print(f"{size:>8} {'GET /for-you (whole page)':<28} {p50:>8.1f} {p99:>8.1f}")
                client.cookies.clear()
        engine.dispose()


if __name__ == "__main__":
    main()
