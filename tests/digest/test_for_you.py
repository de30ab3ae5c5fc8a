""" "For you" with the shared daily papers: five upvotes on one topic pull that topic up."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, select, update

from broadsheet.community.accounts import create_member
from broadsheet.community.votes import set_vote
from broadsheet.config import Settings
from broadsheet.db.schema import papers, subscribers
from broadsheet.digest.for_you import Recommender
from broadsheet.digest.outbox import period_papers, send_digests
from broadsheet.digest.subscriptions import Frequency, add_subscriber
from broadsheet.search.embed import DEFAULT_MODEL
from daily_store import TOPIC, WEEK_DAY
from smtp_sink import SmtpSink


def _on_topic(paper: dict) -> bool:
    return TOPIC in f"{paper['title']} {paper['abstract']}".lower()


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
