"""Everything a member owns, as one JSON document, and deleting their account with it.

Deleting keeps the site's counts right: each upvote comes off its paper's count and each
visible comment off its paper's comment count, in the same transaction as the rows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select, update

from broadsheet.community.accounts import Member
from broadsheet.community.follows import followed
from broadsheet.community.library import member_collections
from broadsheet.db.schema import (
    api_tokens,
    collection_papers,
    collections,
    comments,
    dismissed_papers,
    papers,
    saved_papers,
    subscribers,
    users,
    votes,
)
from broadsheet.db.version import bump_version

EXPORT_FORMAT = "broadsheet-member-export/1"


def _when(value: datetime | None) -> str | None:
    return value.replace(tzinfo=UTC).isoformat() if value is not None else None


def export_member(connection: Connection, member_id: int) -> dict[str, Any]:
    """The member's account, votes, library, collections, notes, comments, dismissals,
    follows and subscription (not their password hash or tokens' secrets)."""
    account = connection.execute(select(users).where(users.c.id == member_id)).one()
    voted = connection.execute(
        select(votes.c.paper_id, votes.c.created_at)
        .where(votes.c.user_id == member_id)
        .order_by(votes.c.created_at, votes.c.paper_id)
    ).all()
    saved = connection.execute(
        select(saved_papers)
        .where(saved_papers.c.user_id == member_id)
        .order_by(saved_papers.c.saved_at, saved_papers.c.paper_id)
    ).all()
    members_of: dict[int, list[str]] = {}
    for collection_id, paper_id in connection.execute(
        select(collection_papers.c.collection_id, collection_papers.c.paper_id)
        .join(collections, collections.c.id == collection_papers.c.collection_id)
        .where(collections.c.user_id == member_id)
        .order_by(collection_papers.c.added_at, collection_papers.c.paper_id)
    ):
        members_of.setdefault(collection_id, []).append(paper_id)
    written = connection.execute(
        select(comments)
        .where(comments.c.user_id == member_id)
        .order_by(comments.c.created_at, comments.c.id)
    ).all()
    dismissed = connection.execute(
        select(dismissed_papers.c.paper_id, dismissed_papers.c.dismissed_at)
        .where(dismissed_papers.c.user_id == member_id)
        .order_by(dismissed_papers.c.dismissed_at, dismissed_papers.c.paper_id)
    ).all()
    subscription = connection.execute(
        select(subscribers).where(subscribers.c.user_id == member_id)
    ).first()
    tokens = connection.execute(
        select(api_tokens.c.name, api_tokens.c.created_at, api_tokens.c.last_used_at)
        .where(api_tokens.c.user_id == member_id)
        .order_by(api_tokens.c.created_at)
    ).all()
    return {
        "format": EXPORT_FORMAT,
        "exported_at": _when(datetime.now(UTC).replace(tzinfo=None)),
        "account": {
            "username": account.username,
            "email": account.email,
            "email_verified_at": _when(account.email_verified_at),
            "is_admin": account.is_admin,
            "created_at": _when(account.created_at),
        },
        "votes": [{"paper_id": p, "voted_at": _when(at)} for p, at in voted],
        "library": [
            {
                "paper_id": row.paper_id,
                "saved_at": _when(row.saved_at),
                "read_at": _when(row.read_at),
                "note": row.note,
            }
            for row in saved
        ],
        "collections": [
            {
                "name": c.name,
                "visibility": c.visibility.value,
                "created_at": _when(c.created_at),
                "papers": members_of.get(c.id, []),
            }
            for c in member_collections(connection, member_id)
        ],
        "comments": [
            {
                "paper_id": c.paper_id,
                "body": c.body,
                "created_at": _when(c.created_at),
                "edited_at": _when(c.edited_at),
                "hidden": c.hidden_at is not None,
            }
            for c in written
        ],
        "dismissed": [{"paper_id": p, "dismissed_at": _when(at)} for p, at in dismissed],
        "following": [
            {"kind": f.kind.value, "name": f.name} for f in followed(connection, member_id)
        ],
        "subscription": None
        if subscription is None
        else {
            "email": subscription.email,
            "status": subscription.status,
            "frequency": subscription.frequency,
            "topics": list(subscription.topics or []),
        },
        "api_tokens": [
            {
                "name": t.name,
                "created_at": _when(t.created_at),
                "last_used_at": _when(t.last_used_at),
            }
            for t in tokens
        ],
    }


def delete_member(engine: Engine, member: Member) -> None:
    """Delete the account and everything it owns; the counts on papers come down with it.

    Their digest subscription is stopped (the address row stays, unsubscribed and anonymous,
    so a later mail to it is still refused as unsubscribed).
    """
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine.begin() as connection:
        voted = select(votes.c.paper_id).where(votes.c.user_id == member.id)
        connection.execute(
            update(papers)
            .where(papers.c.id.in_(voted))
            .values(member_votes=papers.c.member_votes - 1)
        )
        visible = (
            select(comments.c.paper_id, func.count().label("n"))
            .where(comments.c.user_id == member.id, comments.c.hidden_at.is_(None))
            .group_by(comments.c.paper_id)
        )
        for paper_id, count in connection.execute(visible).all():
            connection.execute(
                update(papers)
                .where(papers.c.id == paper_id)
                .values(comment_count=papers.c.comment_count - count)
            )
        connection.execute(
            update(subscribers)
            .where(subscribers.c.user_id == member.id)
            .values(
                user_id=None,
                status="unsubscribed",
                unsubscribed_at=now,
                topics=[],
                pending_email=None,
                confirmation_nonce=None,
            )
        )
        connection.execute(delete(users).where(users.c.id == member.id))  # the rest cascades
        bump_version(connection)
