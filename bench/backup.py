"""`broadsheet backup`, `backup --verify` and `restore` on a store of real papers: time, size,
peak memory, and a backup taken while members keep voting.

Builds (or reuses, with --store) a SQLite store of the shared daily papers
(``../shared/data/hf-daily-papers``) and BEIR SciFact abstracts (``../shared/data/scifact``),
the first N of them, with M members, their votes and comments written straight into the store.
Each command then runs as its own ``broadsheet`` process; its peak resident memory is the
process's own (sampled every 20 ms). Last, a thread upvotes and withdraws votes through
``set_vote`` (one transaction each, rotating over the members) while ``broadsheet backup``
runs: the votes that went through during the backup, against the rate of the same writer
alone, and whether the archive restores to the counts it recorded.

    python bench/backup.py                          # every paper (5,936), 300 members
    python bench/backup.py --papers 500 --members 20 --votes 2000 --comments 200
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, insert, select, update

from broadsheet.community.accounts import Member, create_member, new_session_key
from broadsheet.community.votes import set_vote
from broadsheet.db.backup import backup_store, verify_archive
from broadsheet.db.engine import open_store
from broadsheet.db.schema import comments, papers, users, votes
from broadsheet.ingest.runner import import_file
from broadsheet.sources import beir
from signin_flood import MemorySampler

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DAILY = DATA / "hf-daily-papers" / "daily_papers.json"
SCIFACT = DATA / "scifact" / "corpus.jsonl"
PASSWORD = "bench member password"


def mib(size: float) -> str:
    return f"{size / 2**20:,.1f} MiB"


def import_papers(engine: Engine, count: int, folder: Path) -> None:
    """The first ``count`` daily papers, then SciFact abstracts up to ``count`` in all."""
    left = count
    if DAILY.is_file() and left > 0:
        entries = json.loads(DAILY.read_text())[:left]
        part = folder / "daily_papers.json"
        part.write_text(json.dumps(entries))
        import_file(engine, part)
        left -= len(entries)
    if SCIFACT.is_file() and left > 0:
        part = folder / "corpus.jsonl"
        with SCIFACT.open() as source, part.open("w") as out:
            for _, line in zip(range(left), source, strict=False):
                out.write(line)
        import_file(engine, part, fmt=beir.FORMAT)


def add_community(engine: Engine, members: int, vote_rows: int, comment_rows: int) -> None:
    """Members (one real, the rest with its password hash), votes and comments, in bulk."""
    rng = random.Random(7)
    first = create_member(engine, "member0", PASSWORD)
    with engine.begin() as connection:
        hashed = connection.execute(
            select(users.c.password_hash).where(users.c.id == first.id)
        ).scalar_one()
        now = datetime(2026, 12, 1)
        connection.execute(
            insert(users),
            [
                {
                    "username": f"member{n}",
                    "password_hash": hashed,
                    "created_at": now,
                    "session_key": new_session_key(),
                }
                for n in range(1, members)
            ],
        )
        ids = connection.execute(select(users.c.id)).scalars().all()
        paper_ids = connection.execute(select(papers.c.id)).scalars().all()
        pairs = set()
        while len(pairs) < min(vote_rows, len(ids) * len(paper_ids)):
            pairs.add((rng.choice(ids), rng.choice(paper_ids)))
        rows = [
            {"user_id": u, "paper_id": p, "created_at": now - timedelta(seconds=n)}
            for n, (u, p) in enumerate(pairs)
        ]
        for at in range(0, len(rows), 5000):
            connection.execute(insert(votes), rows[at : at + 5000])
        counts = select(func.count()).where(votes.c.paper_id == papers.c.id).scalar_subquery()
        connection.execute(update(papers).values(member_votes=counts))
        words = "the method improves results on every benchmark we tried, see table".split()
        rows = [
            {
                "paper_id": rng.choice(paper_ids),
                "user_id": rng.choice(ids),
                "body": " ".join(rng.choices(words, k=rng.randint(8, 60))),
                "created_at": now - timedelta(seconds=n),
            }
            for n in range(comment_rows)
        ]
        for at in range(0, len(rows), 5000):
            connection.execute(insert(comments), rows[at : at + 5000])


def store_size(path: Path) -> int:
    """The store file with its WAL and anything saved beside it (``<name>.*``)."""
    return sum(p.stat().st_size for p in path.parent.glob(f"{path.name}*") if p.is_file())


@dataclass
class Run:
    seconds: float
    peak_rss: int  # bytes
    output: str


def broadsheet(*args: str) -> Run:
    """One ``broadsheet`` command in its own process: wall time, and its peak resident memory
    sampled every 20 ms (``ru_maxrss`` would report this process's size: exec keeps it)."""
    command = [sys.executable, "-m", "broadsheet.cli", *args]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sampler = MemorySampler(process.pid)
    sampler.start()
    output = process.stdout.read().decode(errors="replace")
    process.wait()
    elapsed = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"broadsheet {' '.join(args)} failed:\n{output[-2000:]}")
    return Run(elapsed, max(sampler.peak.values(), default=0), output)


def steps(url: str, dest: Path) -> dict[str, float]:
    """Seconds of each step of one in-process ``backup_store``: from the previous step's last
    progress report to this one's (the snapshot's copy, checksums, the compressed tar)."""
    last: dict[str, float] = {}

    def progress(step: str, _done: int, _total: int) -> None:
        last[step] = time.perf_counter()

    started = time.perf_counter()
    backup_store(url, dest, progress)
    marks = [("", started), *last.items(), ("fsync, rename", time.perf_counter())]
    return {step: at - marks[n][1] for n, (step, at) in enumerate(marks[1:])}


class Voter(threading.Thread):
    """Toggles votes through ``set_vote``, one transaction each, until stopped."""

    def __init__(self, url: str, members: list, paper_ids: list[str]):
        super().__init__(daemon=True)
        self.engine = open_store(url)
        self.members, self.paper_ids = members, paper_ids
        self.stop = threading.Event()
        self.times: list[tuple[float, float]] = []  # (finished at, seconds taken)
        self.failures: list[str] = []

    def run(self) -> None:
        rng = random.Random(11)
        n = 0
        while not self.stop.is_set():
            member = self.members[n % len(self.members)]
            started = time.perf_counter()
            try:
                set_vote(self.engine, member, rng.choice(self.paper_ids))
            except Exception as exc:  # counted and shown: the point is whether writes fail
                self.failures.append(type(exc).__name__)
            else:
                finished = time.perf_counter()
                self.times.append((finished, finished - started))
            n += 1
        self.engine.dispose()

    def between(self, start: float, end: float) -> list[float]:
        return [took for at, took in self.times if start <= at <= end]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=6000, help="papers (all there are: 5,936)")
    parser.add_argument("--members", type=int, default=300)
    parser.add_argument("--votes", type=int, default=30_000)
    parser.add_argument("--comments", type=int, default=5_000)
    parser.add_argument("--alone", type=float, default=3.0, help="seconds of the writer alone")
    parser.add_argument("--store", type=Path, help="SQLite file to build, or reuse")
    args = parser.parse_args()
    if not DAILY.is_file() and not SCIFACT.is_file():
        print(f"skipped: shared data not found at {DAILY} or {SCIFACT}")
        return

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = args.store or folder / "store" / "backup.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path}"
        engine = open_store(url)
        with engine.connect() as connection:
            stored = connection.execute(select(func.count()).select_from(papers)).scalar_one()
        if stored == 0:
            print("importing papers and writing members, votes, comments ...", file=sys.stderr)
            import_papers(engine, args.papers, folder)
            add_community(engine, args.members, args.votes, args.comments)
        with engine.connect() as connection:
            counted = {
                name: connection.execute(select(func.count()).select_from(table)).scalar_one()
                for name, table in (("papers", papers), ("members", users), ("votes", votes))
            }
            counted["comments"] = connection.execute(
                select(func.count()).select_from(comments)
            ).scalar_one()
            paper_ids = connection.execute(select(papers.c.id)).scalars().all()
            rows = connection.execute(select(users)).all()
        engine.dispose()
        size = store_size(path)
        print(
            f"store: {counted['papers']:,} papers, {counted['members']:,} members, "
            f"{counted['votes']:,} votes, {counted['comments']:,} comments; {mib(size)}"
        )

        archives = folder / "archives"
        archives.mkdir()
        made = broadsheet("backup", str(archives / "quiet.tar.gz"), "--database", url)
        archive = archives / "quiet.tar.gz"
        checked = broadsheet("backup", str(archive), "--verify", "--database", url)
        target = folder / "restored" / "restored.db"
        target.parent.mkdir()
        restored = broadsheet("restore", str(archive), "--database", f"sqlite:///{target}")

        split = steps(url, archives / "steps.tar.gz")
        members = [Member(r.id, r.username, False, r.session_key) for r in rows]
        voter = Voter(url, members, paper_ids)
        voter.start()
        time.sleep(args.alone)
        alone_end = time.perf_counter()
        alone = voter.between(alone_end - args.alone, alone_end)
        busy = archives / "busy.tar.gz"
        started = time.perf_counter()
        during = broadsheet("backup", str(busy), "--database", url)
        ended = time.perf_counter()
        voter.stop.set()
        voter.join()
        went = voter.between(started, ended)
        manifest, verified = verify_archive(busy)

        print()
        print(f"{'step':<34} {'wall s':>8} {'peak RSS':>12} {'size':>12}")
        print(f"{'store (file, WAL, saved indexes)':<34} {'':>8} {'':>12} {mib(size):>12}")
        rows_out = (
            ("broadsheet backup", made, mib(archive.stat().st_size)),
            ("broadsheet backup --verify", checked, ""),
            ("broadsheet restore (fresh file)", restored, mib(store_size(target))),
            ("broadsheet backup, writer voting", during, mib(busy.stat().st_size)),
        )
        for label, run, shown in rows_out:
            print(f"{label:<34} {run.seconds:>8.2f} {mib(run.peak_rss):>12} {shown:>12}")
        print(f"archive / store: {archive.stat().st_size / size:.1%}")
        shown = ", ".join(f"{step} {seconds:.2f} s" for step, seconds in split.items())
        print(f"one backup_store in process, by step: {shown}")

        def rate(times: list[float], seconds: float) -> str:
            if not times:
                return "0 votes"
            p50 = statistics.median(times) * 1000
            return f"{len(times):,} votes, {len(times) / seconds:,.0f}/s, p50 {p50:.1f} ms, " + (
                f"slowest {max(times) * 1000:.0f} ms"
            )

        print(f"writer alone ({args.alone:.1f} s): {rate(alone, args.alone)}")
        print(f"writer during the backup ({ended - started:.2f} s): {rate(went, ended - started)}")
        print(
            f"writer failures: {len(voter.failures)}"
            + (f" ({', '.join(sorted(set(voter.failures)))})" if voter.failures else "")
        )
        state = "ok" if verified.ok else f"MISMATCH {verified.mismatches}"
        print(f"the busy archive verifies: {state} ({manifest.tables.get('votes', 0):,} votes)")


if __name__ == "__main__":
    main()
