"""Everything a member owns, as one JSON document, and deleting their account with it.

Deleting keeps the site's counts right: each upvote comes off its paper's count and each
visible comment off its paper's comment count, in the same transaction as the rows.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Engine, RowMapping, Table, delete, select, update

from broadsheet.community import ratelimit
from broadsheet.community.accounts import Member
from broadsheet.community.follows import followed
from broadsheet.community.library import Collection, member_collections
from broadsheet.community.submissions import SOURCE as SUBMISSIONS_SOURCE
from broadsheet.db.keyset import keyset_batches
from broadsheet.db.schema import (
    api_tokens,
    collection_papers,
    comments,
    dismissed_papers,
    feed_entries,
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


def _list(
    name: str, batches: Iterator[Sequence[RowMapping]], item: Callable[[RowMapping], Any]
) -> Iterator[str]:
    """``"name": [...]`` of a long list, written a batch at a time."""
    yield f', "{name}": ['
    first = True
    for batch in batches:
        items = (json.dumps(item(row), ensure_ascii=False) for row in batch)
        yield ("" if first else ",") + "\n  " + ",\n  ".join(items)
        first = False
    yield "\n]"


def _mine(engine: Engine, table: Table, member_id: int, *order: Column) -> Iterator:
    """The member's rows of ``table`` in ``order`` (the columns that make a row unique)."""
    query = select(table).where(table.c.user_id == member_id)
    return keyset_batches(engine, query, [(column, False) for column in order])


def _collection(engine: Engine, collection: Collection) -> Iterator[str]:
    head = {
        "name": collection.name,
        "visibility": collection.visibility.value,
        "created_at": _when(collection.created_at),
    }
    yield json.dumps(head, ensure_ascii=False)[:-1]
    ids = select(collection_papers).where(collection_papers.c.collection_id == collection.id)
    order = [(collection_papers.c.added_at, False), (collection_papers.c.paper_id, False)]
    batches = keyset_batches(engine, ids, order)
    yield from _list("papers", batches, lambda row: row["paper_id"])
    yield "}"


def export_member(engine: Engine, member_id: int) -> Iterator[str]:
    """The member's account, votes, library, collections, notes, comments, dismissals,
    follows and subscription (not their password hash or tokens' secrets), as JSON text
    written a part at a time: the long lists are read in batches, never whole."""
    with engine.connect() as connection:
        account = connection.execute(select(users).where(users.c.id == member_id)).one()
        owned = member_collections(connection, member_id, counted=False)  # MAX_COLLECTIONS
        following = followed(connection, member_id)  # at most MAX_FOLLOWS of each kind
        subscription = connection.execute(
            select(subscribers).where(subscribers.c.user_id == member_id)
        ).first()
        tokens = connection.execute(
            select(api_tokens.c.name, api_tokens.c.created_at, api_tokens.c.last_used_at)
            .where(api_tokens.c.user_id == member_id)
            .order_by(api_tokens.c.created_at, api_tokens.c.id)
        ).all()
    head = {
        "format": EXPORT_FORMAT,
        "exported_at": _when(datetime.now(UTC).replace(tzinfo=None)),
        "account": {
            "username": account.username,
            "email": account.email,
            "email_verified_at": _when(account.email_verified_at),
            "is_admin": account.is_admin,
            "created_at": _when(account.created_at),
        },
    }
    yield json.dumps(head, ensure_ascii=False)[:-1]
    yield from _list(
        "votes",
        _mine(engine, votes, member_id, votes.c.created_at, votes.c.paper_id),
        lambda row: {"paper_id": row["paper_id"], "voted_at": _when(row["created_at"])},
    )
    yield from _list(
        "library",
        _mine(engine, saved_papers, member_id, saved_papers.c.saved_at, saved_papers.c.paper_id),
        lambda row: {
            "paper_id": row["paper_id"],
            "saved_at": _when(row["saved_at"]),
            "read_at": _when(row["read_at"]),
            "note": row["note"],
        },
    )
    yield ', "collections": ['
    for n, collection in enumerate(owned):
        yield ("," if n else "") + "\n  "
        yield from _collection(engine, collection)
    yield "\n]"
    yield from _list(
        "comments",
        _mine(engine, comments, member_id, comments.c.created_at, comments.c.id),
        lambda row: {
            "paper_id": row["paper_id"],
            "body": row["body"],
            "created_at": _when(row["created_at"]),
            "edited_at": _when(row["edited_at"]),
            "hidden": row["hidden_at"] is not None,
        },
    )
    dismissed = _mine(
        engine,
        dismissed_papers,
        member_id,
        dismissed_papers.c.dismissed_at,
        dismissed_papers.c.paper_id,
    )
    yield from _list(
        "dismissed",
        dismissed,
        lambda row: {"paper_id": row["paper_id"], "dismissed_at": _when(row["dismissed_at"])},
    )
    tail = {
        "following": [{"kind": f.kind.value, "name": f.name} for f in following],
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
    yield ", " + json.dumps(tail, ensure_ascii=False)[1:]


_LOCK_BATCH = 1000  # paper ids per locking query (engines bound a statement's parameters)


def delete_member(engine: Engine, member: Member) -> None:
    """Delete the account and everything it owns; the counts on papers come down with it.

    Their digest subscription is stopped (the address row stays, unsubscribed and anonymous,
    so a later mail to it is still refused as unsubscribed). Rows are locked in the store's
    one order (db/version.py): the member's own votes and comments, then papers in ascending
    id, then feed entries, then the store version.
    """
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine.begin() as connection:
        taken_back: Counter[str] = Counter()  # votes on each paper
        comments_gone: Counter[str] = Counter()  # visible comments on each paper
        for (paper_id,) in connection.execute(
            delete(votes).where(votes.c.user_id == member.id).returning(votes.c.paper_id)
        ):
            taken_back[paper_id] += 1
        for paper_id, hidden_at in connection.execute(
            delete(comments)
            .where(comments.c.user_id == member.id)
            .returning(comments.c.paper_id, comments.c.hidden_at)
        ):
            comments_gone[paper_id] += hidden_at is None
        touched = sorted(set(taken_back) | {p for p, n in comments_gone.items() if n})
        for start in range(0, len(touched), _LOCK_BATCH):
            batch = touched[start : start + _LOCK_BATCH]
            connection.execute(  # (PostgreSQL) each row locked in ascending id, once
                select(papers.c.id).where(papers.c.id.in_(batch)).order_by(papers.c.id)
                .with_for_update()
            ).all()  # fmt: skip
        for paper_id in touched:
            connection.execute(
                update(papers)
                .where(papers.c.id == paper_id)
                .values(
                    member_votes=papers.c.member_votes - taken_back[paper_id],
                    comment_count=papers.c.comment_count - comments_gone[paper_id],
                )
            )
        connection.execute(  # the name may be someone else's next: it no longer signs these
            update(feed_entries)
            .where(
                feed_entries.c.source == SUBMISSIONS_SOURCE,
                feed_entries.c.submitted_by == member.username,
            )
            .values(submitted_by=None)
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
        ratelimit.forget(connection, f"member:{member.id}")
        connection.execute(delete(users).where(users.c.id == member.id))  # the rest cascades
        bump_version(connection)
