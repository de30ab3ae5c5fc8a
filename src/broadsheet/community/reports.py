"""Members report comments ("report this comment"); admins hide the comment or dismiss the
reports. A member reports a comment once (reporting again changes the reason); reports are
rate-limited per member, and a hidden or unknown comment cannot be reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.orm import aliased

from broadsheet.community import ratelimit
from broadsheet.community.accounts import Member
from broadsheet.community.audit import record_admin_action
from broadsheet.community.moderation import NotAllowed, NotFound, set_comment_hidden
from broadsheet.db.bulk import insert_ignoring_conflicts
from broadsheet.db.schema import comment_reports, comments, papers, users

REPORTS = ratelimit.Limit("comment_reports", hits=20, seconds=3600)
MAX_REASON = 500
Outcome = Literal["hidden", "dismissed"]


@dataclass(frozen=True, slots=True)
class OpenReport:
    comment_id: int
    paper_id: str
    paper_title: str
    author: str
    body: str
    reports: int
    reasons: tuple[str, ...]  # the newest few, with who gave them
    first_at: datetime


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def report_comment(engine: Engine, member: Member, comment_id: int, reason: str) -> str:
    """Record the member's report of a visible comment (once; again: the new reason); the
    paper's id. RateLimited past the limit, NotFound for a comment that is not shown."""
    reason = " ".join(reason.split())[:MAX_REASON]
    with engine.begin() as connection:
        ratelimit.hit(connection, REPORTS, f"member:{member.id}")
        paper_id = connection.execute(
            select(comments.c.paper_id).where(
                comments.c.id == comment_id, comments.c.hidden_at.is_(None)
            )
        ).scalar_one_or_none()
        if paper_id is None:
            raise NotFound(f"No comment {comment_id}.")
        values = {"comment_id": comment_id, "reporter_id": member.id, "reason": reason,
                  "created_at": _now()}  # fmt: skip
        statement = insert_ignoring_conflicts(
            connection, comment_reports, ["comment_id", "reporter_id"]
        )
        added = connection.execute(statement.values(values).returning(comment_reports.c.id))
        if added.first() is None:  # reported before: the new reason, open again
            connection.execute(
                update(comment_reports)
                .where(
                    comment_reports.c.comment_id == comment_id,
                    comment_reports.c.reporter_id == member.id,
                )
                .values(reason=reason, resolved_at=None, resolved_by=None, outcome=None)
            )
    return paper_id


def open_reports(
    connection: Connection, admin: Member | None, limit: int, offset: int = 0
) -> tuple[list[OpenReport], int]:
    """A page of reported comments with open reports, the most reported first, and how many."""
    if admin is None or not admin.is_admin:
        raise NotAllowed("Only admins see reports.")
    is_open = comment_reports.c.resolved_at.is_(None)
    total = connection.execute(
        select(func.count(func.distinct(comment_reports.c.comment_id))).where(is_open)
    ).scalar_one()
    counted = (
        select(
            comment_reports.c.comment_id,
            func.count().label("reports"),
            func.min(comment_reports.c.created_at).label("first_at"),
        )
        .where(is_open)
        .group_by(comment_reports.c.comment_id)
        .subquery()
    )
    rows = connection.execute(
        select(
            comments.c.id,
            comments.c.paper_id,
            papers.c.title,
            users.c.username,
            comments.c.body,
            counted.c.reports,
            counted.c.first_at,
        )
        .join(counted, counted.c.comment_id == comments.c.id)
        .join(papers, papers.c.id == comments.c.paper_id)
        .join(users, users.c.id == comments.c.user_id)
        .order_by(counted.c.reports.desc(), counted.c.first_at, comments.c.id)
        .limit(limit)
        .offset(offset)
    ).all()
    reporter = aliased(users)
    found = []
    for row in rows:
        reasons = connection.execute(
            select(func.coalesce(reporter.c.username, "(deleted)"), comment_reports.c.reason)
            .outerjoin(reporter, reporter.c.id == comment_reports.c.reporter_id)
            .where(comment_reports.c.comment_id == row.id, is_open)
            .order_by(comment_reports.c.id.desc())
            .limit(5)
        ).all()
        shown = tuple(f"{who}: {why}" if why else f"{who}" for who, why in reasons)
        found.append(OpenReport(row[0], row[1], row[2], row[3], row[4], row[5], shown, row[6]))
    return found, total


def resolve_reports(engine: Engine, admin: Member | None, comment_id: int, outcome: Outcome) -> int:
    """Hide the reported comment or dismiss its reports; how many reports were closed."""
    if admin is None or not admin.is_admin:
        raise NotAllowed("Only admins resolve reports.")
    if outcome == "hidden":
        with engine.connect() as connection:
            why = (
                connection.execute(
                    select(comment_reports.c.reason).where(
                        comment_reports.c.comment_id == comment_id,
                        comment_reports.c.resolved_at.is_(None),
                        comment_reports.c.reason != "",
                    )
                )
                .scalars()
                .all()
            )
        reason = f"reported: {'; '.join(dict.fromkeys(why))}" if why else "reported"
        set_comment_hidden(engine, admin, comment_id, True, reason)
    with engine.begin() as connection:
        closed = connection.execute(
            update(comment_reports)
            .where(
                comment_reports.c.comment_id == comment_id,
                comment_reports.c.resolved_at.is_(None),
            )
            .values(resolved_at=_now(), resolved_by=admin.id, outcome=outcome)
        ).rowcount
        if not closed:
            raise NotFound(f"No open report of comment {comment_id}.")
        record_admin_action(connection, admin.id, f"report.{outcome}", f"comment:{comment_id}",
                            {"reports": closed})  # fmt: skip
    return closed
