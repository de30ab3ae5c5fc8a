"""Imports of newer versions while members vote on the same papers: no deadlock, no lost vote.

Both write the papers' rows and the store version; on PostgreSQL they must take those locks in
one order (db/version.py), or each can hold what the other waits for. Which counter row each
write takes is chosen at random, so the test gives the two many chances to meet: five files of
four batches each, with ten members voting throughout.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, func, select

from broadsheet.community import ratelimit
from broadsheet.community.accounts import Member, create_member
from broadsheet.community.votes import set_vote
from broadsheet.db.schema import papers, votes
from broadsheet.ingest.runner import import_file
from snapshot_gen import write_snapshot

PAPERS = 200
BATCH = 50
NEWER_FILES = 5
VOTERS = 10


def newer_versions(older: Path, newer: Path) -> Path:
    """``older``'s records as a later snapshot has them: each one version more."""
    with newer.open("wb") as handle:
        for line in older.read_bytes().splitlines():
            record = orjson.loads(line)
            number = len(record["versions"]) + 1
            record["versions"].append(
                {"version": f"v{number}", "created": "Mon, 1 Jun 2026 12:00:00 GMT"}
            )
            handle.write(orjson.dumps(record) + b"\n")
    return newer


def test_members_vote_while_imports_update_their_papers(
    store: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ratelimit, "VOTES", ratelimit.Limit("votes", hits=10**6, seconds=600))
    files = [write_snapshot(tmp_path / "v1.jsonl", PAPERS)]
    import_file(store, files[0], prefetch=False)
    for number in range(2, NEWER_FILES + 2):
        files.append(newer_versions(files[-1], tmp_path / f"v{number}.jsonl"))
    with store.connect() as connection:
        ids = connection.execute(select(papers.c.id).order_by(papers.c.id)).scalars().all()
    with ThreadPoolExecutor(2) as pool:
        members = list(
            pool.map(
                lambda i: create_member(store, f"voter{i}", "long enough password"), range(VOTERS)
            )
        )
    done = threading.Event()

    def vote(member: Member) -> dict[str, bool]:
        """Toggle votes until the imports end; the state each acknowledged vote left."""
        rng = random.Random(member.id)
        acknowledged: dict[str, bool] = {}
        while not done.is_set():
            paper_id = rng.choice(ids)
            acknowledged[paper_id] = set_vote(store, member, paper_id).voted
        return acknowledged

    with ThreadPoolExecutor(VOTERS) as pool:
        voters = [pool.submit(vote, member) for member in members]
        try:
            summaries = [
                import_file(store, path, batch_size=BATCH, prefetch=False) for path in files[1:]
            ]
        finally:
            done.set()
        acknowledged = [voter.result(timeout=60) for voter in voters]

    assert [s.updated for s in summaries] == [PAPERS] * NEWER_FILES
    assert all(states for states in acknowledged)  # every member voted meanwhile
    expected = {
        (member.id, paper_id)
        for member, states in zip(members, acknowledged, strict=True)
        for paper_id, voted in states.items()
        if voted
    }
    with store.connect() as connection:
        stored = {
            tuple(row) for row in connection.execute(select(votes.c.user_id, votes.c.paper_id))
        }
        rows = dict(
            connection.execute(
                select(votes.c.paper_id, func.count()).group_by(votes.c.paper_id)
            ).all()
        )
        counters = dict(connection.execute(select(papers.c.id, papers.c.member_votes)).all())
        newest = connection.execute(select(func.min(papers.c.version))).scalar_one()
    assert stored == expected  # every acknowledged vote (and withdrawal) is stored
    assert counters == {paper_id: rows.get(paper_id, 0) for paper_id in ids}
    assert newest >= NEWER_FILES + 1  # and every paper has its newest version
