"""Composing and delivering N personalised digests to a local SMTP sink (aiosmtpd).

The store is bench/web_load.py's: 10,000 synthetic papers, 40 on the feed each day up to today,
with synthetic vectors (built on first use, or reused with ``--store``). On top of it: N
confirmed daily subscribers, each with one or two saved searches drawn from a pool of 300
queries, and one subscriber in five is a member with five upvotes, so the digest carries a
"for you" section from that member's classifier. Members and votes are inserted directly
(argon2 hashing 2,000 passwords is not what this measures).

The sink is aiosmtpd's ``Sink`` handler in its own process on a local port, so it does not
compete with the sender for the interpreter. The timing covers ``send_digests``: queueing
the outbox, the searches, the per-member models, composing both parts of every mail, SMTP
over one connection, and recording each delivery.

    python bench/digest.py                               # 10,000 digests, temporary store
    python bench/digest.py --store /tmp/http-10k.db --subscribers 10000
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete, insert, select

import web_load
from broadsheet.config import Settings
from broadsheet.db.engine import open_store
from broadsheet.db.schema import (
    digest_outbox,
    digest_sent_papers,
    papers,
    subscribers,
    users,
    votes,
)
from broadsheet.digest.outbox import send_digests
from broadsheet.digest.subscriptions import Frequency
from snapshot_gen import ZipfVocabulary

QUERIES = 300
MEMBER_SHARE = 5  # one subscriber in five is a member with votes
UPVOTES = 5


def prepare(engine, count: int, seed: int) -> None:
    """Replace the bench's subscribers, members and votes with ``count`` fresh ones."""
    rng = random.Random(seed)
    vocabulary = ZipfVocabulary()
    queries = [" ".join(vocabulary.draw_content(rng, rng.randint(1, 3))) for _ in range(QUERIES)]
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine.begin() as connection:
        for table in (digest_sent_papers, digest_outbox, subscribers, votes, users):
            connection.execute(delete(table))
        paper_ids = connection.execute(select(papers.c.id)).scalars().all()
        members = [
            {
                "id": i + 1,
                "username": f"member{i}",
                "password_hash": "-",
                "created_at": now,
                "session_key": f"bench-{i}",
            }
            for i in range(count // MEMBER_SHARE)
        ]
        connection.execute(insert(users), members)
        connection.execute(
            insert(votes),
            [
                {"user_id": m["id"], "paper_id": p, "created_at": now}
                for m in members
                for p in rng.sample(paper_ids, UPVOTES)
            ],
        )
        connection.execute(
            insert(subscribers),
            [
                {
                    "email": f"reader{i}@example.org",
                    "status": "confirmed",
                    "frequency": "daily",
                    "topics": rng.sample(queries, rng.randint(1, 2)),
                    "created_at": now,
                    "confirmed_at": now,
                    "failure_count": 0,
                    "user_id": i // MEMBER_SHARE + 1 if i % MEMBER_SHARE == 0 else None,
                }
                for i in range(count)
            ],
        )


def start_sink(port: int) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
        "-c", "aiosmtpd.handlers.Sink",
    ]  # fmt: skip
    sink = subprocess.Popen(command)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return sink
        time.sleep(0.1)
    sink.terminate()
    raise SystemExit("the SMTP sink did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--papers", type=int, default=10_000)
    parser.add_argument("--store", type=Path, help="bench/web_load.py's store to reuse or build")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; {args.subscribers:,} subscribers"
    )
    with tempfile.TemporaryDirectory() as scratch:
        path = args.store or Path(scratch) / "digest.db"
        if args.store is None or not path.exists():
            web_load.build_store(f"sqlite:///{path}", Path(scratch), args.papers, args.seed)
        work = Path(scratch) / "work.db"
        shutil.copy(path, work)  # the bench's writes never touch a reused store
        engine = open_store(f"sqlite:///{work}")
        prepare(engine, args.subscribers, args.seed)
        port = web_load.free_port()
        sink = start_sink(port)
        settings = Settings(database_url=f"sqlite:///{work}", smtp_host="127.0.0.1", smtp_port=port)
        try:
            started = time.perf_counter()
            summary = send_digests(
                engine, settings, "bench-secret", Frequency.daily, datetime.now(UTC).date()
            )
            seconds = time.perf_counter() - started
        finally:
            sink.terminate()
            sink.wait(10)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"sent {summary.sent:,} digests ({summary.empty} empty, {summary.failed} failed) "
            f"in {seconds:.1f} s: {summary.sent / seconds:.0f} digests/s; peak RSS {peak:.0f} MiB"
        )


if __name__ == "__main__":
    main()
