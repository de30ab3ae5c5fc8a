"""Following authors and organisations, and the "Following" feed of their papers.

An author is followed by name as this site stores it: the name is looked up ignoring letter
case (``find_author``), and every paper whose author list holds that exact stored name counts.
Names are not identities: two people who share a name are followed together, and one person
who signs as "J. Smith" on one paper and "John Smith" on another is two names here.
Organisations are followed by their slug.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, literal, or_, select, union_all

from broadsheet.community import ratelimit
from broadsheet.community.accounts import Member
from broadsheet.community.library import SAVES, LibraryError, NotFound
from broadsheet.db.bulk import insert_ignoring_conflicts
from broadsheet.db.schema import (
    authors,
    followed_authors,
    followed_organisations,
    organisations,
    paper_authors,
    papers,
)
from broadsheet.feed.authors import find_author
from broadsheet.feed.cards import card
from broadsheet.feed.views import CARD_COLUMNS

MAX_FOLLOWS = 1000  # authors and organisations, each


class Kind(StrEnum):
    author = "author"
    organisation = "organisation"


@dataclass(frozen=True, slots=True)
class Followed:
    kind: Kind
    name: str  # the author's stored name, or the organisation's slug
    label: str  # what the page shows


def _target(connection: Connection, kind: Kind, name: str) -> int:
    if kind == Kind.author:
        found = find_author(connection, name)
        if found is None:
            raise NotFound(f"No author {name!r} here.")
        return found.id
    row = connection.execute(
        select(organisations.c.id).where(func.lower(organisations.c.slug) == name.lower())
    ).first()
    if row is None:
        raise NotFound(f"No organisation {name!r} here.")
    return row.id


def _table(kind: Kind):
    if kind == Kind.author:
        return followed_authors, followed_authors.c.author_id
    return followed_organisations, followed_organisations.c.organisation_id


def follow(engine: Engine, member: Member, kind: Kind, name: str, followed: bool = True) -> None:
    """Follow (or with ``followed=False`` unfollow) an author or organisation; idempotent."""
    table, column = _table(kind)
    with engine.begin() as connection:
        ratelimit.hit(connection, SAVES, f"member:{member.id}")
        target = _target(connection, kind, name)
        if not followed:
            connection.execute(delete(table).where(table.c.user_id == member.id, column == target))
            return
        count = connection.execute(
            select(func.count()).select_from(table).where(table.c.user_id == member.id)
        ).scalar_one()
        if count >= MAX_FOLLOWS:
            raise LibraryError(f"You follow {MAX_FOLLOWS} already: unfollow some first.")
        statement = insert_ignoring_conflicts(connection, table, ["user_id", column.name])
        now = datetime.now(UTC).replace(tzinfo=None)
        connection.execute(
            statement.values({"user_id": member.id, column.name: target, "created_at": now})
        )


def is_following(connection: Connection, member: Member | None, kind: Kind, name: str) -> bool:
    if member is None:
        return False
    table, column = _table(kind)
    try:
        target = _target(connection, kind, name)
    except NotFound:
        return False
    found = connection.execute(
        select(table.c.user_id).where(table.c.user_id == member.id, column == target)
    ).first()
    return found is not None


def _who(member_id: int):
    """Whom the member follows as rows (kind, name, label), authors first, each by name."""
    people = (
        select(
            literal(0).label("kind"),
            authors.c.name.label("name"),
            authors.c.name.label("label"),
        )
        .join(followed_authors, followed_authors.c.author_id == authors.c.id)
        .where(followed_authors.c.user_id == member_id)
    )
    labs = (
        select(
            literal(1).label("kind"),
            organisations.c.slug.label("name"),
            func.coalesce(func.nullif(organisations.c.full_name, ""), organisations.c.name).label(
                "label"
            ),
        )
        .join(
            followed_organisations, followed_organisations.c.organisation_id == organisations.c.id
        )
        .where(followed_organisations.c.user_id == member_id)
    )
    return union_all(people, labs).subquery()


def followed(
    connection: Connection, member_id: int, limit: int | None = None, offset: int = 0
) -> list[Followed]:
    """Whom the member follows: authors by name, then organisations by slug (all of them, at
    most ``MAX_FOLLOWS`` of each, or a page)."""
    who = _who(member_id)
    rows = connection.execute(
        select(who).order_by(who.c.kind, who.c.name).limit(limit).offset(offset)
    )
    kinds = (Kind.author, Kind.organisation)
    return [Followed(kinds[kind], name, label or name) for kind, name, label in rows]


def followed_count(connection: Connection, member_id: int) -> int:
    return connection.execute(select(func.count()).select_from(_who(member_id))).scalar_one()


def _followed_papers(member_id: int):
    by_author = select(paper_authors.c.paper_id).where(
        paper_authors.c.author_id.in_(
            select(followed_authors.c.author_id).where(followed_authors.c.user_id == member_id)
        )
    )
    by_organisation = select(followed_organisations.c.organisation_id).where(
        followed_organisations.c.user_id == member_id
    )
    return or_(papers.c.id.in_(by_author), papers.c.organisation_id.in_(by_organisation))


def following_feed(
    connection: Connection,
    member_id: int,
    limit: int = 30,
    offset: int = 0,
    since: datetime | None = None,
    before: datetime | None = None,
) -> list[dict[str, Any]]:
    """Visible papers by the authors and organisations the member follows, newest first
    (published from ``since`` and before ``before``, when given: the digest's new papers)."""
    where = [_followed_papers(member_id), papers.c.hidden_at.is_(None)]
    if since is not None:
        where.append(papers.c.published_at >= since)
    if before is not None:
        where.append(papers.c.published_at < before)
    rows = connection.execute(
        select(*CARD_COLUMNS)
        .select_from(
            papers.outerjoin(organisations, organisations.c.id == papers.c.organisation_id)
        )
        .where(*where)
        .order_by(papers.c.published_at.desc().nulls_last(), papers.c.id.desc())
        .limit(limit)
        .offset(offset)
    ).mappings()
    return [card(dict(row)) for row in rows]


def why_followed(paper: dict[str, Any], who: list[Followed]) -> str:
    """The digest's reason for a paper of the Following section: whom it is by."""
    names = {f.name for f in who if f.kind == Kind.author}
    for name in paper.get("authors") or []:
        if name in names:
            return f"by {name}, whom you follow"
    for f in who:
        if f.kind == Kind.organisation and paper.get("organisation_slug") == f.name:
            return f"from {f.label}, which you follow"
    return "by someone you follow"
