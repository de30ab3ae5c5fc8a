""" "For you" with the shared daily papers: five upvotes on one topic pull that topic up."""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, select, update
from sqlalchemy.engine import make_url

from broadsheet.community.accounts import create_member
from broadsheet.community.votes import set_vote
from broadsheet.config import Settings
from broadsheet.db.engine import make_engine, migrate
from broadsheet.db.schema import papers, subscribers
from broadsheet.digest.for_you import Recommender
from broadsheet.digest.outbox import period_papers, send_digests
from broadsheet.digest.subscriptions import Frequency, add_subscriber
from broadsheet.ingest.runner import import_file
from broadsheet.search.embed import DEFAULT_MODEL, load_embedder
from broadsheet.search.vectors import pending_papers, store_vectors
from databases import drop_database, new_database_url
from helpers import SHARED_DATA
from smtp_sink import SmtpSink

WEEK_DAY = date(2024, 2, 14)  # the digest's week: Feb 12-18, 2024
TOPIC = "diffusion"


def _on_topic(paper: dict) -> bool:
    return TOPIC in f"{paper['title']} {paper['abstract']}".lower()


def _copy_of(url: str, folder: Path) -> str:
    """A new store with the contents of the store at ``url`` (a file copy, or a database cloned
    from it as a template)."""
    source = make_url(url)
    if source.get_backend_name() == "sqlite":
        shutil.copy(source.database, folder / "daily.db")
        return f"sqlite:///{folder / 'daily.db'}"
    copy = f"{source.database}_{folder.name}"[:63].lower().replace("-", "_")
    admin = create_engine(source.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{copy}" TEMPLATE "{source.database}"')
    finally:
        admin.dispose()
    return source.set(database=copy).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def _daily_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    source = SHARED_DATA / "hf-daily-papers" / "daily_papers.json"
    if not source.exists():
        pytest.skip(f"shared data not found at {source} (it sits beside the repository in CI)")
    url = new_database_url(tmp_path_factory.mktemp("for-you"), "daily", migrated=True)
    engine = make_engine(url)
    migrate(engine)
    import_file(engine, source)
    # embed the week's papers, January's papers on the topic (to upvote) and 150 others
    week = {p["id"] for p in period_papers(engine, Frequency.weekly, WEEK_DAY)}
    with engine.connect() as connection:
        rows = connection.execute(
            select(papers.c.seq, papers.c.id, papers.c.title, papers.c.published_at)
        ).all()
    january = sorted(
        r.id
        for r in rows
        if TOPIC in r.title.lower() and r.published_at.strftime("%Y-%m") == "2024-01"
    )
    others = sorted(r.id for r in rows if r.id not in week)
    wanted_ids = week | set(january) | set(random.Random(3).sample(others, 150))
    wanted = {r.seq for r in rows if r.id in wanted_ids}
    embedder = load_embedder()
    with engine.connect() as reader:
        pending = [p for p in pending_papers(reader, DEFAULT_MODEL) if p.seq in wanted]
    vectors = embedder.encode([p.text for p in pending])
    with engine.begin() as writer:
        store_vectors(writer, DEFAULT_MODEL, pending, vectors)
    engine.dispose()
    yield url
    drop_database(url)


@pytest.fixture
def daily_store(_daily_store: str, tmp_path: Path) -> Iterator[Engine]:
    url = _copy_of(_daily_store, tmp_path)
    engine = make_engine(url)
    yield engine
    engine.dispose()
    drop_database(url)


def _member_with_topic_upvotes(engine: Engine) -> int:
    member = create_member(engine, "reader", "long enough password")
    with engine.connect() as connection:
        liked = (
            connection.execute(
                select(papers.c.id)
                .where(papers.c.title.ilike(f"%{TOPIC}%"), papers.c.published_at < date(2024, 2, 1))
                .order_by(papers.c.id)
                .limit(5)
            )
            .scalars()
            .all()
        )
    assert len(liked) == 5
    for paper_id in liked:
        set_vote(engine, member, paper_id)
    return member.id


def test_five_upvotes_on_a_topic_rank_that_topic_first(daily_store: Engine) -> None:
    member_id = _member_with_topic_upvotes(daily_store)
    week = period_papers(daily_store, Frequency.weekly, WEEK_DAY)
    on_topic = {p["id"] for p in week if _on_topic(p)}
    assert 3 <= len(on_topic) < len(week) / 2  # the week has some, but mostly other papers
    with daily_store.connect() as connection:
        picks = Recommender(connection, DEFAULT_MODEL, [p["id"] for p in week]).picks(
            member_id, limit=len(week)
        )
    ranked = [pick.paper_id for pick in picks]
    assert set(ranked) == {p["id"] for p in week}  # every candidate has a vector here
    assert all(paper_id in on_topic for paper_id in ranked[:5])  # what the digest shows
    top = ranked[: len(on_topic)]
    assert sum(paper_id in on_topic for paper_id in top) >= 0.6 * len(on_topic)
    mean_rank = {
        flag: sum(i for i, p in enumerate(ranked) if (p in on_topic) == flag)
        / sum((p in on_topic) == flag for p in ranked)
        for flag in (True, False)
    }
    assert mean_rank[True] < 0.6 * mean_rank[False]
    assert all(TOPIC in pick.because.lower() for pick in picks[:3])  # the reason names one


def test_the_digest_has_a_for_you_section_with_reasons(daily_store: Engine, smtp: SmtpSink) -> None:
    member_id = _member_with_topic_upvotes(daily_store)
    add_subscriber(daily_store, "reader@example.org", Frequency.weekly)
    with daily_store.begin() as connection:
        connection.execute(update(subscribers).values(status="confirmed", user_id=member_id))
    settings = Settings(smtp_host=smtp.host, smtp_port=smtp.port, base_url="http://digest.test")
    summary = send_digests(daily_store, settings, "secret", Frequency.weekly, WEEK_DAY)
    assert summary.sent == 1
    text = smtp.messages[0].get_body(("plain",)).get_content()
    assert "FOR YOU" in text
    section = text.split("FOR YOU", 1)[1]
    assert "you upvoted)" in section and TOPIC in section.lower()
