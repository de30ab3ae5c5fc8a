"""Admins hide papers and comments, see what is hidden, and can bring it back: hiding deletes
nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, func, select, update

from broadsheet.community.accounts import Member
from broadsheet.db.schema import comments, papers, users
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


@dataclass(frozen=True, slots=True)
class HiddenPaper:
    id: str
    title: str
    hidden_at: datetime


@dataclass(frozen=True, slots=True)
class HiddenComment:
    id: int
    paper_id: str
    paper_title: str
    author: str
    body: str
    hidden_at: datetime


def hidden_papers(
    connection: Connection, admin: Member | None, limit: int, offset: int = 0
) -> tuple[list[HiddenPaper], int]:
    """A page of the hidden papers, the latest hidden first, and how many there are."""
    _require_admin(admin)
    hidden = papers.c.hidden_at.is_not(None)
    total = connection.execute(select(func.count()).where(hidden)).scalar_one()
    rows = connection.execute(
        select(papers.c.id, papers.c.title, papers.c.hidden_at)
        .where(hidden)
        .order_by(papers.c.hidden_at.desc(), papers.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [HiddenPaper(*row) for row in rows], total


def hidden_comments(
    connection: Connection, admin: Member | None, limit: int, offset: int = 0
) -> tuple[list[HiddenComment], int]:
    """A page of the hidden comments, the latest hidden first, and how many there are."""
    _require_admin(admin)
    hidden = comments.c.hidden_at.is_not(None)
    total = connection.execute(select(func.count()).where(hidden)).scalar_one()
    rows = connection.execute(
        select(
            comments.c.id,
            comments.c.paper_id,
            papers.c.title,
            users.c.username,
            comments.c.body,
            comments.c.hidden_at,
        )
        .join(papers, papers.c.id == comments.c.paper_id)
        .join(users, users.c.id == comments.c.user_id)
        .where(hidden)
        .order_by(comments.c.hidden_at.desc(), comments.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [HiddenComment(*row) for row in rows], total
