"""Admins hide papers and comments, see what is hidden, and can bring it back: hiding deletes
nothing."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, func, select, update

from broadsheet.community.accounts import Member
from broadsheet.community.audit import record_admin_action
from broadsheet.db.schema import admin_audit, comments, papers, users
from broadsheet.db.version import bump_version


class NotAllowed(PermissionError):
    pass


class NotFound(LookupError):
    pass


MAX_REASON = 500


def _require_admin(member: Member | None) -> None:
    if member is None or not member.is_admin:
        raise NotAllowed("Only admins can hide papers and comments.")


def set_paper_hidden(
    engine: Engine, admin: Member | None, paper_id: str, hidden: bool, reason: str = ""
) -> None:
    """Hide a paper from the feed, search, pages and API, or show it again; ``reason`` goes
    in the audit log, and the list of hidden papers shows it."""
    _require_admin(admin)
    stamp = datetime.now(UTC).replace(tzinfo=None) if hidden else None
    with engine.begin() as connection:
        changed = connection.execute(
            update(papers).where(papers.c.id == paper_id).values(hidden_at=stamp)
        ).rowcount
        if changed:
            action = "paper.hide" if hidden else "paper.unhide"
            detail = {"reason": _clean(reason)} if hidden and reason.strip() else {}
            record_admin_action(connection, admin.id, action, f"paper:{paper_id}", detail)
        bump_version(connection)
    if not changed:
        raise NotFound(f"No paper {paper_id!r}.")


def set_comment_hidden(
    engine: Engine, admin: Member | None, comment_id: int, hidden: bool, reason: str = ""
) -> str:
    """Hide or show a comment, keeping the paper's visible-comment count in step; ``reason``
    goes in the audit log, and the list of hidden comments shows it.

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
            action = "comment.hide" if hidden else "comment.unhide"
            detail = {"reason": _clean(reason)} if hidden and reason.strip() else {}
            record_admin_action(connection, admin.id, action, f"comment:{comment_id}", detail)
            bump_version(connection)
    return paper_id


def _clean(reason: str) -> str:
    return " ".join(reason.split())[:MAX_REASON]


def _reasons(connection: Connection, kind: str, ids: list) -> dict[str, str]:
    """Why each of these papers or comments was hidden: the reason of its latest hiding."""
    targets = [f"{kind}:{i}" for i in ids]
    rows = connection.execute(
        select(admin_audit.c.target, admin_audit.c.detail)
        .where(admin_audit.c.target.in_(targets), admin_audit.c.action == f"{kind}.hide")
        .order_by(admin_audit.c.id)
    )
    return {target: (detail or {}).get("reason", "") for target, detail in rows}


@dataclass(frozen=True, slots=True)
class HiddenPaper:
    id: str
    title: str
    hidden_at: datetime
    reason: str = ""


@dataclass(frozen=True, slots=True)
class HiddenComment:
    id: int
    paper_id: str
    paper_title: str
    author: str
    body: str
    hidden_at: datetime
    reason: str = ""


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
    found = [HiddenPaper(*row) for row in rows]
    why = _reasons(connection, "paper", [p.id for p in found])
    return [replace(p, reason=why.get(f"paper:{p.id}", "")) for p in found], total


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
    found = [HiddenComment(*row) for row in rows]
    why = _reasons(connection, "comment", [c.id for c in found])
    return [replace(c, reason=why.get(f"comment:{c.id}", "")) for c in found], total
