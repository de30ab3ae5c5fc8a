from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, func, select

from broadsheet.community import ratelimit
from broadsheet.community.accounts import Member, create_member
from broadsheet.community.marks import marked_papers
from broadsheet.community.votes import NoSuchPaper, member_upvotes, set_vote
from broadsheet.db.schema import papers, votes


def _member(store: Engine, name: str = "ada") -> Member:
    return create_member(store, name, "long enough password")


def _counts(store: Engine, paper_id: str) -> tuple[int, int]:
    with store.connect() as connection:
        stored = connection.execute(
            select(papers.c.member_votes).where(papers.c.id == paper_id)
        ).scalar_one()
        rows = connection.execute(
            select(func.count()).select_from(votes).where(votes.c.paper_id == paper_id)
        ).scalar_one()
    return stored, rows


def test_toggle_adds_then_withdraws_one_vote(papers_store: Engine) -> None:
    ada = _member(papers_store)
    first = set_vote(papers_store, ada, "2401.00001")
    assert (first.voted, first.votes) == (True, 4)  # 3 imported upvotes + Ada
    assert _counts(papers_store, "2401.00001") == (1, 1)
    second = set_vote(papers_store, ada, "2401.00001")
    assert (second.voted, second.votes) == (False, 3)
    assert _counts(papers_store, "2401.00001") == (0, 0)


def test_explicit_votes_are_idempotent(papers_store: Engine) -> None:
    ada = _member(papers_store)
    for _ in range(3):
        assert set_vote(papers_store, ada, "2401.00002", voted=True).votes == 1
    assert _counts(papers_store, "2401.00002") == (1, 1)
    for _ in range(2):
        assert set_vote(papers_store, ada, "2401.00002", voted=False).votes == 0
    assert _counts(papers_store, "2401.00002") == (0, 0)


def test_fifty_members_voting_at_once_give_exactly_fifty(papers_store: Engine) -> None:
    members = [_member(papers_store, f"member{i:02d}") for i in range(50)]
    with ThreadPoolExecutor(max_workers=50) as pool:
        states = list(pool.map(lambda m: set_vote(papers_store, m, "2401.00002"), members))
    assert all(state.voted for state in states)
    assert _counts(papers_store, "2401.00002") == (50, 50)
    # each vote returns the count its own update wrote: one of 1..50, none repeated
    assert sorted(state.votes for state in states) == list(range(1, 51))


def test_one_member_clicking_many_times_at_once_never_drifts(papers_store: Engine) -> None:
    ada = _member(papers_store)
    with ThreadPoolExecutor(max_workers=11) as pool:
        list(pool.map(lambda _: set_vote(papers_store, ada, "2401.00002"), range(11)))
    stored, rows = _counts(papers_store, "2401.00002")
    assert stored == rows == 1  # eleven toggles: voted, and the counter agrees with the rows


def test_voting_on_a_missing_or_hidden_paper_fails(
    papers_store: Engine, hide: Callable[[str], None]
) -> None:
    ada = _member(papers_store)
    with pytest.raises(NoSuchPaper):
        set_vote(papers_store, ada, "2401.99999")
    hide("2401.00002")
    with pytest.raises(NoSuchPaper):
        set_vote(papers_store, ada, "2401.00002")
    assert _counts(papers_store, "2401.00002") == (0, 0)


def test_voted_papers_and_member_upvotes(papers_store: Engine) -> None:
    ada, bob = _member(papers_store), _member(papers_store, "bob")
    set_vote(papers_store, ada, "2401.00001")
    with papers_store.connect() as connection:
        assert marked_papers(connection, votes, ada, ["2401.00001", "2401.00002"]) == {"2401.00001"}
        assert marked_papers(connection, votes, bob, ["2401.00001"]) == set()
        assert marked_papers(connection, votes, None, ["2401.00001"]) == set()
        assert member_upvotes(connection, ada.id) == ["2401.00001"]


def test_votes_are_rate_limited_per_member(
    papers_store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ratelimit, "VOTES", ratelimit.Limit("votes", hits=4, seconds=600))
    ada, bob = _member(papers_store), _member(papers_store, "bob")
    for _ in range(4):
        set_vote(papers_store, ada, "2401.00001")
    with pytest.raises(ratelimit.RateLimited, match="Too many votes"):
        set_vote(papers_store, ada, "2401.00001")
    assert _counts(papers_store, "2401.00001") == (0, 0)  # the refused toggle changed nothing
    assert set_vote(papers_store, bob, "2401.00001").voted  # others are not affected
