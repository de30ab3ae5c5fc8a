"""The site's "for you" page with the shared daily papers: saves pull a topic up, 👎 push one
down, and what was saved or dismissed drops out."""

from __future__ import annotations

from sqlalchemy import Engine, select

from broadsheet.community.accounts import Member, create_member
from broadsheet.community.dismissals import dismiss
from broadsheet.community.library import save_paper
from broadsheet.db.schema import paper_vectors, papers
from broadsheet.feed.for_you import NO_SIGNALS, NO_VECTORS, for_you_page, member_signal_papers
from broadsheet.search.embed import DEFAULT_MODEL
from daily_store import TOPIC

OTHER = "language model"


def _embedded(engine: Engine, phrase: str, exclude: str | None = None) -> list[str]:
    """Embedded papers whose title holds ``phrase`` (and not ``exclude``), by id."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(papers.c.id, papers.c.title)
            .join(paper_vectors, paper_vectors.c.paper_seq == papers.c.seq)
            .where(paper_vectors.c.model == DEFAULT_MODEL)
            .order_by(papers.c.id)
        ).all()
    return [
        r.id
        for r in rows
        if phrase in r.title.lower() and (exclude is None or exclude not in r.title.lower())
    ]


def _topic_of(engine: Engine, paper_id: str) -> str:
    with engine.connect() as connection:
        row = connection.execute(
            select(papers.c.title, papers.c.abstract).where(papers.c.id == paper_id)
        ).one()
    text = f"{row.title} {row.abstract}".lower()
    return "on" if TOPIC in text else "other" if OTHER in text else ""


def _member(engine: Engine) -> Member:
    return create_member(engine, "reader", "long enough password")


def test_five_saves_on_a_topic_and_five_dismissals_on_another_rank_the_first_above(
    daily_store: Engine,
) -> None:
    member = _member(daily_store)
    liked = _embedded(daily_store, TOPIC)[:5]
    disliked = _embedded(daily_store, OTHER, exclude=TOPIC)[:5]
    assert len(liked) == 5 and len(disliked) == 5
    for paper_id in liked:
        save_paper(daily_store, member, paper_id)
    before = for_you_page(daily_store, member.id, DEFAULT_MODEL, limit=60)
    for paper_id in disliked:
        dismiss(daily_store, member, paper_id)
    page = for_you_page(daily_store, member.id, DEFAULT_MODEL, limit=60)
    ranked = [paper["id"] for paper, _ in page.picks]
    assert len(ranked) == 60 and (page.liked, page.dismissed) == (5, 5)
    assert not set(ranked) & set(liked + disliked)  # saved and dismissed papers drop out
    topics = [_topic_of(daily_store, paper_id) for paper_id in ranked]
    assert topics[:5] == ["on"] * 5
    on = [n for n, t in enumerate(topics) if t == "on"]
    other = [n for n, t in enumerate(topics) if t == "other"]
    assert len(on) > len(other)
    assert not other or sum(on) / len(on) < sum(other) / len(other)
    # the dismissals pushed the other topic down: fewer of it in the first 60 than before
    other_before = sum(_topic_of(daily_store, p["id"]) == "other" for p, _ in before.picks)
    assert len(other) < other_before
    # each pick says which saved paper it is like
    for _, pick in page.picks[:5]:
        assert pick.because_id in liked and pick.verb == "saved"


def test_pages_follow_on_without_repeats(daily_store: Engine) -> None:
    member = _member(daily_store)
    for paper_id in _embedded(daily_store, TOPIC)[:3]:
        save_paper(daily_store, member, paper_id)
    first = for_you_page(daily_store, member.id, DEFAULT_MODEL, limit=20)
    second = for_you_page(daily_store, member.id, DEFAULT_MODEL, limit=20, offset=20)
    ids = [p["id"] for p, _ in first.picks] + [p["id"] for p, _ in second.picks]
    assert len(ids) == 40 and len(set(ids)) == 40
    scores = [pick.score for _, pick in first.picks + second.picks]
    assert scores == sorted(scores, reverse=True)


def test_a_member_without_signals_or_vectors_is_told_what_to_do(daily_store: Engine) -> None:
    member = _member(daily_store)
    assert for_you_page(daily_store, member.id, DEFAULT_MODEL).notice == NO_SIGNALS
    with daily_store.connect() as connection:
        unembedded = connection.execute(
            select(papers.c.id)
            .outerjoin(paper_vectors, paper_vectors.c.paper_seq == papers.c.seq)
            .where(paper_vectors.c.paper_seq.is_(None))
            .limit(1)
        ).scalar_one()
    save_paper(daily_store, member, unembedded)
    page = for_you_page(daily_store, member.id, DEFAULT_MODEL)
    assert page.notice == NO_VECTORS and page.picks == []


def test_the_signals_list_names_each_kind(daily_store: Engine) -> None:
    from broadsheet.community.votes import set_vote

    member = _member(daily_store)
    first, second, third = _embedded(daily_store, TOPIC)[:3]
    set_vote(daily_store, member, first)
    save_paper(daily_store, member, first)  # upvoted and saved: listed once, as upvoted
    save_paper(daily_store, member, second)
    dismiss(daily_store, member, third)
    kinds = {(s.paper_id, s.kind) for s in member_signal_papers(daily_store, member.id)}
    assert kinds == {(first, "upvoted"), (second, "saved"), (third, "dismissed")}


def test_a_hidden_paper_leaves_the_picks(daily_store: Engine) -> None:
    from datetime import datetime

    from sqlalchemy import update

    member = _member(daily_store)
    for paper_id in _embedded(daily_store, TOPIC)[:3]:
        save_paper(daily_store, member, paper_id)
    first = for_you_page(daily_store, member.id, DEFAULT_MODEL, limit=5)
    top = first.picks[0][0]["id"]
    with daily_store.begin() as connection:
        connection.execute(
            update(papers).where(papers.c.id == top).values(hidden_at=datetime(2024, 5, 1))
        )
    again = for_you_page(daily_store, member.id, DEFAULT_MODEL, limit=5)
    ids = [p["id"] for p, _ in again.picks]
    assert top not in ids and len(ids) == 5
    assert ids[:4] == [p["id"] for p, _ in first.picks[1:]]


def test_the_feed_sorted_for_you_puts_the_saved_topic_first(daily_store: Engine) -> None:
    from broadsheet.feed.for_you import member_scores
    from broadsheet.feed.periods import Period
    from broadsheet.feed.views import feed_page
    from daily_store import WEEK_DAY

    member = _member(daily_store)
    for paper_id in _embedded(daily_store, TOPIC)[:5]:
        save_paper(daily_store, member, paper_id)

    def scores(ids: list[str]) -> dict[str, float]:
        return member_scores(daily_store, member.id, DEFAULT_MODEL, ids)

    with daily_store.connect() as connection:
        shared = feed_page(connection, Period.weekly, WEEK_DAY, limit=100)
        mine = feed_page(connection, Period.weekly, WEEK_DAY, limit=100, personal=scores)
    assert mine.personal and not shared.personal and mine.sort_name == "for_you"
    assert {p["id"] for p in mine.papers} == {p["id"] for p in shared.papers}  # same papers
    on = [n for n, p in enumerate(mine.papers) if _topic_of(daily_store, p["id"]) == "on"]
    on_shared = [n for n, p in enumerate(shared.papers) if _topic_of(daily_store, p["id"]) == "on"]
    assert on[:3] == [0, 1, 2]
    assert sum(on) / len(on) < sum(on_shared) / len(on_shared)
