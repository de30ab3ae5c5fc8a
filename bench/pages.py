"""Page latency on a large store: the feed, trending, paper, organisation and author pages.

Takes a SQLite store of many papers (``python bench/search.py --papers 1000000 --store F``
builds one) and adds E daily-papers entries to it once (``bench/web_load.py``'s generator: 40
a day up to today, Zipf upvotes, an organisation on one in three, authors from 5,000 names),
so the feed has days, weeks and months to show beside the bulk of papers that are on no feed,
as on a public instance holding all of arXiv. Then it renders each page R times through the
real application in this process (Starlette's test client: no network, no server), signed in,
so no visitors' page cache answers: every request reads the store and renders. Paper pages
rotate over random papers of the whole store (with their similar papers when they have
vectors), organisation and author pages over those of the feed.

    python bench/pages.py --store /tmp/search-1m.db
    python bench/pages.py --store /tmp/s.db --entries 2000 --requests 20
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import text

from broadsheet.community.accounts import AccountError, create_member
from broadsheet.config import Settings
from broadsheet.db.engine import open_store
from broadsheet.ingest.runner import import_file
from broadsheet.web.app import create_app
from snapshot_gen import ZipfVocabulary
from web_load import BENCH_MEMBER, BENCH_PASSWORD, daily_entries


def add_feed(engine, entries: int, seed: int) -> float:
    """E daily entries imported once (their own ids); seconds taken, 0 when already there."""
    with engine.connect() as connection:
        present = connection.exec_driver_sql("SELECT count(*) FROM feed_entries").scalar()
    if present >= entries:
        return 0.0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "feed.daily.json"
        source.write_bytes(json.dumps(daily_entries(entries, ZipfVocabulary(), seed)).encode())
        summary = import_file(engine, source)
    if summary.errors:
        raise SystemExit(f"feed import failed: {summary}")
    return time.perf_counter() - started


def sample(engine, requests: int, seed: int) -> dict[str, list[str]]:
    """The paths each page is timed with."""
    rng = random.Random(seed)
    with engine.connect() as connection:
        newest = connection.exec_driver_sql("SELECT max(seq) FROM papers").scalar()
        seqs = [rng.randint(1, newest) for _ in range(requests * 2)]
        ids = connection.exec_driver_sql(
            f"SELECT id FROM papers WHERE seq IN ({','.join(map(str, seqs))})"
        ).scalars()
        ids = list(ids)[:requests]
        slugs = connection.exec_driver_sql(
            "SELECT DISTINCT o.slug FROM organisations o JOIN papers p ON p.organisation_id = o.id"
            " JOIN feed_entries f ON f.paper_id = p.id LIMIT 200"
        ).scalars()
        slugs = list(slugs)
        names = connection.exec_driver_sql(
            "SELECT a.name FROM authors a JOIN paper_authors pa ON pa.author_id = a.id"
            " JOIN feed_entries f ON f.paper_id = pa.paper_id"
            " LIMIT 2000"
        ).scalars()
        names = list(dict.fromkeys(names))
    pick = [rng.choice(slugs) for _ in range(requests)] if slugs else []
    return {
        "/ (today, trending)": ["/"] * requests,
        "/?period=weekly": ["/?period=weekly"] * requests,
        "/?period=monthly&sort=top": ["/?period=monthly&sort=top"] * requests,
        "/?sort=new&page=3": ["/?sort=new&page=3"] * requests,
        "/papers/{id} (any paper)": [f"/papers/{paper_id}" for paper_id in ids],
        "/organisations/{slug}": [f"/organisations/{slug}" for slug in pick],
        "/authors/{name}": [f"/authors/{quote(rng.choice(names))}" for _ in range(requests)],
        "/feed.atom": ["/feed.atom"] * requests,
        "/api/daily_papers": ["/api/daily_papers"] * requests,
    }


def signed_in(client: TestClient) -> None:
    form = client.get("/signin").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    data = {"username": BENCH_MEMBER, "password": BENCH_PASSWORD, "csrf_token": token}
    if client.post("/signin", data=data, follow_redirects=False).status_code != 303:
        raise SystemExit("the bench member could not sign in")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True, help="SQLite file of many papers")
    parser.add_argument("--entries", type=int, default=20_000, help="daily entries to add")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per page")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    if not args.store.is_file():
        raise SystemExit(f"{args.store}: no such store (bench/search.py --store builds one)")
    url = f"sqlite:///{args.store}"
    engine = open_store(url)
    added = add_feed(engine, args.entries, args.seed)
    with contextlib.suppress(AccountError):  # made by an earlier run
        create_member(engine, BENCH_MEMBER, BENCH_PASSWORD)
    with engine.connect() as connection:
        papers, feed = (
            connection.execute(text(f"SELECT count(*) FROM {table}")).scalar()
            for table in ("papers", "feed_entries")
        )
    paths = sample(engine, args.requests, args.seed)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python"
        f" {platform.python_version()}; store {args.store}: {papers:,} papers, {feed:,} feed"
        f" entries{f' (added in {added:.0f} s)' if added else ''}; {args.requests} requests"
        " per page, signed in (no page cache)"
    )
    settings = Settings(database_url=url, secret_key="bench-pages")
    with TestClient(create_app(settings)) as client:
        signed_in(client)
        print("| page | p50 ms | p95 ms | max ms | status |")
        print("|---|---:|---:|---:|---|")
        for label, targets in paths.items():
            if not targets:
                continue
            client.get(targets[0])  # warm: this page's queries and template
            times, statuses = [], set()
            for target in targets:
                started = time.perf_counter()
                response = client.get(target)
                times.append((time.perf_counter() - started) * 1000)
                statuses.add(response.status_code)
            print(
                f"| {label} | {np.percentile(times, 50):.1f} | {np.percentile(times, 95):.1f} |"
                f" {max(times):.1f} | {', '.join(map(str, sorted(statuses)))} |"
            )


if __name__ == "__main__":
    main()
