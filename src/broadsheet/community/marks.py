"""What a member has done to the papers on a page (upvoted, saved, dismissed): the state of
each card's buttons."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection, Table, select

from broadsheet.community.accounts import Member
from broadsheet.db.schema import dismissed_papers, saved_papers, votes


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
