""" "Not interested": a member dismisses a paper (👎), which leaves their "for you" picks and
teaches their model what they do not want."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, select

from broadsheet.community import ratelimit
from broadsheet.community.accounts import Member
from broadsheet.community.library import SAVES, NotFound
from broadsheet.db.bulk import insert_ignoring_conflicts
from broadsheet.db.schema import dismissed_papers, papers


def dismiss(engine: Engine, member: Member, paper_id: str, dismissed: bool = True) -> None:
    """Mark the paper not interesting to the member (``dismissed=False`` takes that back)."""
    with engine.begin() as connection:
        ratelimit.hit(connection, SAVES, f"member:{member.id}")
        if not dismissed:
            connection.execute(
                delete(dismissed_papers).where(
                    dismissed_papers.c.user_id == member.id,
                    dismissed_papers.c.paper_id == paper_id,
                )
            )
            return
        exists = connection.execute(select(papers.c.id).where(papers.c.id == paper_id)).first()
        if exists is None:
            raise NotFound(f"No paper {paper_id!r} here.")
        statement = insert_ignoring_conflicts(connection, dismissed_papers, ["user_id", "paper_id"])
        now = datetime.now(UTC).replace(tzinfo=None)
        connection.execute(statement.values(user_id=member.id, paper_id=paper_id, dismissed_at=now))


def dismissed_ids(
    connection: Connection, member: Member | None, paper_ids: Iterable[str]
) -> set[str]:
    """Which of ``paper_ids`` the member dismissed (for drawing the 👎 buttons)."""
    ids = list(paper_ids)
    if member is None or not ids:
        return set()
    query = select(dismissed_papers.c.paper_id).where(
        dismissed_papers.c.user_id == member.id, dismissed_papers.c.paper_id.in_(ids)
    )
    return set(connection.execute(query).scalars())
