"""Upvotes: one per member per paper, toggled atomically, counted on the paper row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, select, update

from broadsheet.community import ratelimit
from broadsheet.community.accounts import Member
from broadsheet.db.bulk import insert_ignoring_conflicts
from broadsheet.db.schema import papers, votes
from broadsheet.db.version import bump_version


class NoSuchPaper(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class VoteState:
    paper_id: str
    voted: bool  # whether the member now upvotes the paper
    votes: int  # the paper's count: imported upvotes plus members' votes


def _count(connection: Connection, paper_id: str) -> int:
    row = connection.execute(
        select(papers.c.upvotes, papers.c.member_votes).where(
            papers.c.id == paper_id, papers.c.hidden_at.is_(None)
        )
    ).first()
    if row is None:
        raise NoSuchPaper(paper_id)
    return row.upvotes + row.member_votes


def set_vote(engine: Engine, member: Member, paper_id: str, voted: bool | None = None) -> VoteState:
    """Upvote (``voted=True``), withdraw (``False``) or toggle (``None``) in one transaction.

    The vote row and ``papers.member_votes`` change together: the insert or delete decides,
    by the rows it returns, whether the counter moves, so concurrent clicks never lose or
    double a vote. The returned count is the one the counter's ``UPDATE … RETURNING`` wrote:
    SQLite serialises the writers; on PostgreSQL the paper's row lock orders them, and a
    count read before that lock could miss a vote committed meanwhile. The paper's row is
    locked before the store version, the order every writer keeps (db/version.py).
    """
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine.begin() as connection:
        ratelimit.hit(connection, ratelimit.VOTES, f"member:{member.id}")
        _count(connection, paper_id)  # the paper must exist and be visible
        if voted is None:
            voted = (
                connection.execute(
                    select(votes.c.paper_id).where(
                        votes.c.user_id == member.id, votes.c.paper_id == paper_id
                    )
                ).first()
                is None
            )
        if voted:
            statement = insert_ignoring_conflicts(connection, votes, ["user_id", "paper_id"])
            statement = statement.values(user_id=member.id, paper_id=paper_id, created_at=now)
            step = 1
        else:
            statement = delete(votes).where(
                votes.c.user_id == member.id, votes.c.paper_id == paper_id
            )
            step = -1
        changed = connection.execute(statement.returning(votes.c.paper_id)).first() is not None
        if not changed:
            return VoteState(paper_id, voted, _count(connection, paper_id))
        count = connection.execute(
            update(papers)
            .where(papers.c.id == paper_id)
            .values(member_votes=papers.c.member_votes + step)
            .returning(papers.c.upvotes + papers.c.member_votes)
        ).scalar_one()
        bump_version(connection)
        return VoteState(paper_id, voted, count)


def member_upvotes(connection: Connection, member_id: int) -> list[str]:
    """The papers a member upvoted, newest vote first (the digest's "for you" reads these)."""
    query = (
        select(votes.c.paper_id)
        .where(votes.c.user_id == member_id)
        .order_by(votes.c.created_at.desc())
    )
    return list(connection.execute(query).scalars())
