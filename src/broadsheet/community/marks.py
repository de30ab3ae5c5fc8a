"""What a member has done to papers (upvoted, saved, dismissed): the state of each card's
buttons, and the lists of what drives their "for you" picks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import Column, Connection, Table, func, select

from broadsheet.community.accounts import Member
from broadsheet.db.schema import dismissed_papers, papers, saved_papers, votes


def marked_papers(
    connection: Connection, table: Table, member: Member | None, paper_ids: Iterable[str]
) -> set[str]:
    """Which of ``paper_ids`` the member has a row for in ``table`` (keyed by user and paper)."""
    ids = list(paper_ids)
    if member is None or not ids:
        return set()
    query = select(table.c.paper_id).where(table.c.user_id == member.id, table.c.paper_id.in_(ids))
    return set(connection.execute(query).scalars())


@dataclass(frozen=True)
class CardMarks:
    """The papers of a page that the member upvoted, saved and dismissed."""

    voted: set[str] = field(default_factory=set)
    saved: set[str] = field(default_factory=set)
    dismissed: set[str] = field(default_factory=set)


def card_marks(
    connection: Connection, member: Member | None, paper_ids: Iterable[str]
) -> CardMarks:
    ids = list(paper_ids)
    return CardMarks(
        voted=marked_papers(connection, votes, member, ids),
        saved=marked_papers(connection, saved_papers, member, ids),
        dismissed=marked_papers(connection, dismissed_papers, member, ids),
    )


class Mark(StrEnum):
    upvoted = "upvoted"
    saved = "saved"
    dismissed = "dismissed"


def _marks(kind: Mark) -> tuple[Table, Column]:
    """The table of one kind of mark and when each was made."""
    if kind == Mark.upvoted:
        return votes, votes.c.created_at
    if kind == Mark.saved:
        return saved_papers, saved_papers.c.saved_at
    return dismissed_papers, dismissed_papers.c.dismissed_at


@dataclass(frozen=True, slots=True)
class Marked:
    paper_id: str
    title: str


def marked_list(
    connection: Connection, member_id: int, kind: Mark, limit: int, offset: int = 0
) -> list[Marked]:
    """A page of the papers the member marked ``kind``, newest first (hidden ones too: the
    marks are still theirs to remove)."""
    table, when = _marks(kind)
    page = (
        select(table.c.paper_id, when.label("at"))
        .where(table.c.user_id == member_id)
        .order_by(when.desc(), table.c.paper_id)
        .limit(limit)
        .offset(offset)
        .subquery()
    )
    rows = connection.execute(
        select(page.c.paper_id, papers.c.title)
        .join(papers, papers.c.id == page.c.paper_id)
        .order_by(page.c.at.desc(), page.c.paper_id)
    )
    return [Marked(paper_id, title) for paper_id, title in rows]


def marked_count(connection: Connection, member_id: int, kind: Mark) -> int:
    table, _ = _marks(kind)
    query = select(func.count()).select_from(table).where(table.c.user_id == member_id)
    return connection.execute(query).scalar_one()
