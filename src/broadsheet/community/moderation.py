"""Admins hide papers and comments and can bring them back: hiding deletes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select, update

from broadsheet.community.accounts import Member
from broadsheet.db.schema import comments, papers
from broadsheet.db.version import bump_version


class NotAllowed(PermissionError):
    pass


class NotFound(LookupError):
    pass


def _require_admin(member: Member | None) -> None:
    if member is None or not member.is_admin:
        raise NotAllowed("Only admins can hide papers and comments.")


def set_paper_hidden(engine: Engine, admin: Member | None, paper_id: str, hidden: bool) -> None:
    """Hide a paper from the feed, search, pages and API, or show it again."""
    _require_admin(admin)
    stamp = datetime.now(UTC).replace(tzinfo=None) if hidden else None
    with engine.begin() as connection:
        changed = connection.execute(
            update(papers).where(papers.c.id == paper_id).values(hidden_at=stamp)
        ).rowcount
        bump_version(connection)
    if not changed:
        raise NotFound(f"No paper {paper_id!r}.")


def set_comment_hidden(engine: Engine, admin: Member | None, comment_id: int, hidden: bool) -> str:
    """Hide or show a comment, keeping the paper's visible-comment count in step.

    Returns the paper's id.
    """
    _require_admin(admin)
    stamp = datetime.now(UTC).replace(tzinfo=None) if hidden else None
    with engine.begin() as connection:
        paper_id = connection.execute(
            select(comments.c.paper_id).where(comments.c.id == comment_id)
        ).scalar_one_or_none()
        if paper_id is None:
            raise NotFound(f"No comment {comment_id}.")
        currently = comments.c.hidden_at.is_(None) if hidden else comments.c.hidden_at.is_not(None)
        changed = connection.execute(  # only a real change moves the count, even when racing
            update(comments).where(comments.c.id == comment_id, currently).values(hidden_at=stamp)
        ).rowcount
        if changed:
            connection.execute(
                update(papers)
                .where(papers.c.id == paper_id)
                .values(comment_count=papers.c.comment_count + (-1 if hidden else 1))
            )
            bump_version(connection)
    return paper_id
