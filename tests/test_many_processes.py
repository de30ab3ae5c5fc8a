"""One PostgreSQL store shared by several processes, as on a public instance's machines.

Two ``broadsheet index`` runs share the embedding work with none done twice; two ``serve``
processes take 50 votes at once and count each exactly once, accept each other's sessions (the
secret is in the store) and retire each other's page caches.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from broadsheet.community.accounts import create_member
from broadsheet.db.engine import make_engine, migrate
from broadsheet.db.schema import paper_vectors, papers, votes
from broadsheet.ingest.runner import import_file
from databases import drop_database, new_postgres_url
from helpers import free_port, run_env
from web.conftest import form_token

TOPICS = Path(__file__).parent / "fixtures" / "daily_papers" / "topics.json"
VOTERS = 50
PASSWORD = "long enough password"

pytestmark = pytest.mark.slow


@pytest.fixture
def shared_store() -> Iterator[str]:
    url = new_postgres_url()
    engine = make_engine(url)
    migrate(engine)
    import_file(engine, TOPICS)
    engine.dispose()
    yield url
    drop_database(url)


def _broadsheet(*args: str) -> list[str]:
    return [sys.executable, "-m", "broadsheet.cli", *args]


def test_two_index_runs_embed_every_paper_once(shared_store: str) -> None:
    env = run_env(shared_store)
    runs = [
        subprocess.Popen(
            _broadsheet("index", "--batch-size", "2", "--part-size", "2"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    embedded = [int(re.search(r"embedded now\D+(\d+)", out).group(1)) for out in outputs]
    engine = make_engine(shared_store)
    with engine.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(papers)).scalar_one()
        vectors = connection.execute(select(func.count()).select_from(paper_vectors)).scalar_one()
    engine.dispose()
    assert vectors == stored
    assert sum(embedded) == stored, f"each paper embedded once, not {embedded} of {stored}"


@contextlib.contextmanager
def _servers(url: str, count: int) -> Iterator[list[str]]:
    ports = [free_port() for _ in range(count)]
    env = run_env(url)
    env.pop("BROADSHEET_SECRET_KEY", None)  # the servers share the one kept in the store
    processes = [
        subprocess.Popen(
            [*_broadsheet("serve", "--port", str(port)), "--no-access-log", "--no-warm-up"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for port in ports
    ]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        deadline = time.monotonic() + 90
        for base, process in zip(bases, processes, strict=True):
            while True:
                assert process.poll() is None, process.stderr.read()
                assert time.monotonic() < deadline, "serve never answered"
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                time.sleep(0.2)
        yield bases
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.communicate(timeout=30)


def _signed_in(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60)
    token = form_token(client.get("/signin").text)
    answer = client.post(
        "/signin",
        data={"username": username, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return client


def test_two_servers_count_fifty_votes_at_once_exactly(shared_store: str) -> None:
    engine = make_engine(shared_store)
    for number in range(VOTERS):
        create_member(engine, f"voter{number}", PASSWORD)
    with _servers(shared_store, 2) as (first, second):
        before = httpx.get(f"{second}/").text  # the feed, cached for visitors on the second
        paper = re.search(r'data-paper="([^"]+)"', before).group(1)
        with engine.connect() as connection:
            upvotes = connection.execute(
                select(papers.c.upvotes).where(papers.c.id == paper)
            ).scalar_one()
        members = [_signed_in(first, f"voter{number}") for number in range(VOTERS)]
        for number, member in enumerate(members):  # half of them go to the other server,
            if number % 2:  # with the cookie the first one signed: both sign alike
                member.base_url = httpx.URL(second)

        def cast(member: httpx.Client) -> int:
            token = form_token(member.get(f"/papers/{paper}").text)
            answer = member.post(
                f"/papers/{paper}/vote",
                headers={"HX-Request": "true", "X-CSRF-Token": token},
            )
            assert answer.status_code == 200, answer.text
            return int(re.search(r'class="count"[^>]*>(\d+)<', answer.text).group(1))

        with ThreadPoolExecutor(VOTERS) as pool:
            counts = list(pool.map(cast, members))
        after = httpx.get(f"{second}/").text

    assert sorted(counts) == list(range(upvotes + 1, upvotes + VOTERS + 1))
    with engine.connect() as connection:
        stored = connection.execute(
            select(func.count()).select_from(votes).where(votes.c.paper_id == paper)
        ).scalar_one()
        counter = connection.execute(
            select(papers.c.member_votes).where(papers.c.id == paper)
        ).scalar_one()
    engine.dispose()
    assert stored == counter == VOTERS
    card = re.search(rf'data-paper="{re.escape(paper)}".*?class="count"[^>]*>(\d+)<', after, re.S)
    assert int(card.group(1)) == upvotes + VOTERS, "the other server's page cache was retired"
