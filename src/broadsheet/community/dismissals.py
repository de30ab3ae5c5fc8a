""" "Not interested": a member dismisses a paper (👎), which leaves their "for you" picks and
teaches their model what they do not want."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, delete

from broadsheet.community import ratelimit
from broadsheet.community.accounts import Member
from broadsheet.community.library import SAVES, require_visible_paper
from broadsheet.db.bulk import insert_ignoring_conflicts
from broadsheet.db.schema import dismissed_papers


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
        require_visible_paper(connection, paper_id)
        statement = insert_ignoring_conflicts(connection, dismissed_papers, ["user_id", "paper_id"])
        now = datetime.now(UTC).replace(tzinfo=None)
        connection.execute(statement.values(user_id=member.id, paper_id=paper_id, dismissed_at=now))
