"""A member's library: saved papers with read/unread and a private note, and named collections.

Saving is idempotent (a double click saves once); putting a paper in a collection saves it;
removing it from the library takes it out of every collection. Collections are private,
shared by an unguessable link, or public on the member's profile.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, select, update

from broadsheet.community import ratelimit
from broadsheet.community.accounts import Member
from broadsheet.community.comments import render_markdown
from broadsheet.db.bulk import insert_ignoring_conflicts
from broadsheet.db.schema import collection_papers, collections, papers, saved_papers, users

MAX_NOTE = 10_000
MAX_COLLECTION_NAME = 80
MAX_COLLECTIONS = 200  # per member
SAVES = ratelimit.Limit("saves", hits=300, seconds=600)  # saves, notes and collection changes


class Visibility(StrEnum):
    private = "private"  # the member alone
    link = "link"  # whoever has its link
    public = "public"  # listed on the member's profile, with an Atom feed


class Shown(StrEnum):
    all = "all"
    unread = "unread"
    read = "read"


class LibraryError(ValueError):
    """A refused change, said in words for the page (the field it concerns first)."""


class NotFound(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Collection:
    id: int
    user_id: int
    name: str
    visibility: Visibility
    share_token: str
    created_at: datetime
    papers: int = 0
    owner: str = ""


@dataclass(frozen=True, slots=True)
class SavedPaper:
    paper: dict[str, Any]
    saved_at: datetime
    read_at: datetime | None
    note: str | None
    collection_ids: frozenset[int]

    @property
    def note_html(self) -> str:
        return render_markdown(self.note) if self.note else ""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def require_visible_paper(connection: Connection, paper_id: str) -> None:
    """Refuse (:class:`NotFound`) a paper that is not here or hidden by a moderator."""
    found = connection.execute(
        select(papers.c.id).where(papers.c.id == paper_id, papers.c.hidden_at.is_(None))
    ).first()
    if found is None:
        raise NotFound(f"No paper {paper_id!r} here.")


def _save(connection: Connection, member: Member, paper_id: str, now: datetime) -> None:
    statement = insert_ignoring_conflicts(connection, saved_papers, ["user_id", "paper_id"])
    connection.execute(statement.values(user_id=member.id, paper_id=paper_id, saved_at=now))


def save_paper(engine: Engine, member: Member, paper_id: str) -> None:
    """Put the paper in the member's library (unread); saving it again changes nothing."""
    with engine.begin() as connection:
        ratelimit.hit(connection, SAVES, f"member:{member.id}")
        require_visible_paper(connection, paper_id)
        _save(connection, member, paper_id, _now())


def remove_paper(engine: Engine, member: Member, paper_id: str) -> None:
    """Take the paper out of the library and out of every collection of the member's."""
    with engine.begin() as connection:
        ratelimit.hit(connection, SAVES, f"member:{member.id}")
        owned = select(collections.c.id).where(collections.c.user_id == member.id)
        connection.execute(
            delete(collection_papers).where(
                collection_papers.c.paper_id == paper_id,
                collection_papers.c.collection_id.in_(owned),
            )
        )
        connection.execute(
            delete(saved_papers).where(
                saved_papers.c.user_id == member.id, saved_papers.c.paper_id == paper_id
            )
        )


def set_read(engine: Engine, member: Member, paper_id: str, read: bool) -> None:
    """Mark a saved paper read or unread (saving it first when it is not in the library)."""
    _update_entry(engine, member, paper_id, read_at=_now() if read else None)


def _update_entry(engine: Engine, member: Member, paper_id: str, **values: Any) -> None:
    """Change the member's library entry for the paper, saving the paper first if need be."""
    with engine.begin() as connection:
        ratelimit.hit(connection, SAVES, f"member:{member.id}")
        require_visible_paper(connection, paper_id)
        _save(connection, member, paper_id, _now())
        connection.execute(
            update(saved_papers)
            .where(saved_papers.c.user_id == member.id, saved_papers.c.paper_id == paper_id)
            .values(**values)
        )


def checked_note(body: str) -> str | None:
    """The note to store (None clears it); LibraryError says what is wrong."""
    body = body.replace("\x00", "").strip()
    if len(body) > MAX_NOTE:
        raise LibraryError(f"Note is too long: notes are at most {MAX_NOTE:,} characters.")
    return body or None


def set_note(engine: Engine, member: Member, paper_id: str, body: str) -> str | None:
    """Store the member's private note on a paper (markdown, shown cleaned as comments are);
    an empty note clears it. The paper is saved if it was not."""
    note = checked_note(body)
    _update_entry(engine, member, paper_id, note=note, note_updated_at=_now())
    return note


def checked_name(name: str) -> str:
    name = " ".join(name.replace("\x00", "").split())
    if not name:
        raise LibraryError("Collection name is empty: give the collection a name.")
    if len(name) > MAX_COLLECTION_NAME:
        raise LibraryError(
            f"Collection name is too long: at most {MAX_COLLECTION_NAME} characters."
        )
    return name


def _name_taken(connection: Connection, member: Member, name: str, but: int | None) -> bool:
    query = select(collections.c.id).where(
        collections.c.user_id == member.id, func.lower(collections.c.name) == name.lower()
    )
    if but is not None:
        query = query.where(collections.c.id != but)
    return connection.execute(query).first() is not None


def create_collection(
    engine: Engine, member: Member, name: str, visibility: Visibility = Visibility.private
) -> Collection:
    with engine.begin() as connection:
        ratelimit.hit(connection, SAVES, f"member:{member.id}")
        return _create_collection(connection, member, name, visibility)


def _create_collection(
    connection: Connection, member: Member, name: str, visibility: Visibility
) -> Collection:
    name = checked_name(name)
    count = connection.execute(
        select(func.count()).where(collections.c.user_id == member.id)
    ).scalar_one()
    if count >= MAX_COLLECTIONS:
        raise LibraryError(f"Too many collections: a member keeps at most {MAX_COLLECTIONS}.")
    if _name_taken(connection, member, name, None):
        raise LibraryError(f"Collection name is taken: you have a collection “{name}”.")
    row = {
        "user_id": member.id,
        "name": name,
        "visibility": Visibility(visibility).value,
        "share_token": secrets.token_urlsafe(16),
        "created_at": _now(),
    }
    new_id = connection.execute(
        collections.insert().values(**row).returning(collections.c.id)
    ).scalar_one()
    return Collection(id=new_id, **{**row, "visibility": Visibility(row["visibility"])})


def own_collection(connection: Connection, member: Member, collection_id: int) -> Collection:
    """The member's collection, or NotFound (another member's is not found either)."""
    found = _collections(connection, [collections.c.id == collection_id])
    if not found or found[0].user_id != member.id:
        raise NotFound(f"No collection {collection_id} of yours here.")
    return found[0]


def shared_collection(connection: Connection, token: str) -> Collection:
    """A collection shared by link or public, by its link's token."""
    found = _collections(
        connection,
        [collections.c.share_token == token, collections.c.visibility != Visibility.private.value],
    )
    if not found:
        raise NotFound("No shared collection at this address (it may have been made private).")
    return found[0]


def update_collection(
    engine: Engine,
    member: Member,
    collection_id: int,
    name: str | None = None,
    visibility: Visibility | None = None,
) -> Collection:
    with engine.begin() as connection:
        ratelimit.hit(connection, SAVES, f"member:{member.id}")
        own_collection(connection, member, collection_id)
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = checked_name(name)
            if _name_taken(connection, member, values["name"], collection_id):
                raise LibraryError(
                    f"Collection name is taken: you have a collection “{values['name']}”."
                )
        if visibility is not None:
            values["visibility"] = Visibility(visibility).value
        if values:
            connection.execute(
                update(collections).where(collections.c.id == collection_id).values(**values)
            )
        return own_collection(connection, member, collection_id)


def delete_collection(engine: Engine, member: Member, collection_id: int) -> None:
    """Delete the collection; its papers stay in the library."""
    with engine.begin() as connection:
        own_collection(connection, member, collection_id)
        connection.execute(
            delete(collection_papers).where(collection_papers.c.collection_id == collection_id)
        )
        connection.execute(delete(collections).where(collections.c.id == collection_id))


def set_paper_collections(
    engine: Engine,
    member: Member,
    paper_id: str,
    collection_ids: Iterable[int],
    new_name: str = "",
) -> list[int]:
    """Make the paper belong to exactly ``collection_ids`` of the member's (plus a new one
    named ``new_name``, when given), saving it. Returns the collections it is now in."""
    wanted = set(collection_ids)
    now = _now()
    with engine.begin() as connection:  # all or nothing, the new collection included
        ratelimit.hit(connection, SAVES, f"member:{member.id}")
        require_visible_paper(connection, paper_id)
        owned = set(
            connection.execute(
                select(collections.c.id).where(collections.c.user_id == member.id)
            ).scalars()
        )
        unknown = wanted - owned
        if unknown:
            raise NotFound(f"No collection {min(unknown)} of yours here.")
        if new_name.strip():
            created = _create_collection(connection, member, new_name, Visibility.private)
            wanted.add(created.id)
            owned.add(created.id)
        _save(connection, member, paper_id, now)
        connection.execute(
            delete(collection_papers).where(
                collection_papers.c.paper_id == paper_id,
                collection_papers.c.collection_id.in_(owned - wanted),
            )
        )
        for collection_id in sorted(wanted):
            statement = insert_ignoring_conflicts(
                connection, collection_papers, ["collection_id", "paper_id"]
            )
            connection.execute(
                statement.values(collection_id=collection_id, paper_id=paper_id, added_at=now)
            )
    return sorted(wanted)


def _collections(connection: Connection, where: Sequence[Any]) -> list[Collection]:
    count = (
        select(func.count())
        .where(collection_papers.c.collection_id == collections.c.id)
        .scalar_subquery()
    )
    query = (
        select(collections, count.label("papers"), users.c.username.label("owner"))
        .join(users, users.c.id == collections.c.user_id)
        .where(*where)
        .order_by(func.lower(collections.c.name), collections.c.id)
    )
    return [
        Collection(
            id=row.id,
            user_id=row.user_id,
            name=row.name,
            visibility=Visibility(row.visibility),
            share_token=row.share_token,
            created_at=row.created_at,
            papers=row.papers,
            owner=row.owner,
        )
        for row in connection.execute(query)
    ]


def member_collections(connection: Connection, member_id: int) -> list[Collection]:
    return _collections(connection, [collections.c.user_id == member_id])


def public_collections(connection: Connection, username: str) -> list[Collection]:
    """The public collections on a member's profile (any letter case of the name)."""
    return _collections(
        connection,
        [
            func.lower(users.c.username) == username.lower(),
            collections.c.visibility == Visibility.public.value,
        ],
    )


def _matches(words: list[str], entry: SavedPaper) -> bool:
    paper = entry.paper
    fields = [paper.get("title"), paper.get("abstract"), entry.note, paper["id"]]
    text = " ".join([*(f or "" for f in fields), *(paper.get("authors") or [])]).casefold()
    return all(word in text for word in words)


def library(
    connection: Connection,
    member: Member,
    shown: Shown = Shown.all,
    collection_id: int | None = None,
    query: str = "",
) -> list[SavedPaper]:
    """The member's saved papers, newest saved first: read or unread, in one collection, or
    holding every word of ``query`` (in the title, abstract, authors, id or the note)."""
    where = [saved_papers.c.user_id == member.id, papers.c.hidden_at.is_(None)]
    if shown == Shown.unread:
        where.append(saved_papers.c.read_at.is_(None))
    elif shown == Shown.read:
        where.append(saved_papers.c.read_at.is_not(None))
    if collection_id is not None:
        own_collection(connection, member, collection_id)
        where.append(
            saved_papers.c.paper_id.in_(
                select(collection_papers.c.paper_id).where(
                    collection_papers.c.collection_id == collection_id
                )
            )
        )
    rows = connection.execute(
        select(papers, saved_papers.c.saved_at, saved_papers.c.read_at, saved_papers.c.note)
        .join(saved_papers, saved_papers.c.paper_id == papers.c.id)
        .where(*where)
        .order_by(saved_papers.c.saved_at.desc(), papers.c.id)
    ).mappings()
    entries = [dict(row) for row in rows]
    memberships = _memberships(connection, member, [e["id"] for e in entries])
    found = [
        SavedPaper(
            paper={k: v for k, v in e.items() if k not in ("saved_at", "read_at", "note")},
            saved_at=e["saved_at"],
            read_at=e["read_at"],
            note=e["note"],
            collection_ids=frozenset(memberships.get(e["id"], ())),
        )
        for e in entries
    ]
    words = query.casefold().split()
    return [entry for entry in found if _matches(words, entry)] if words else found


def saved_entry(connection: Connection, member: Member, paper_id: str) -> SavedPaper | None:
    """The member's library entry for one paper (None when it is not saved)."""
    row = connection.execute(
        select(saved_papers).where(
            saved_papers.c.user_id == member.id, saved_papers.c.paper_id == paper_id
        )
    ).first()
    if row is None:
        return None
    memberships = _memberships(connection, member, [paper_id])
    return SavedPaper(
        paper={"id": paper_id},
        saved_at=row.saved_at,
        read_at=row.read_at,
        note=row.note,
        collection_ids=frozenset(memberships.get(paper_id, ())),
    )


def _memberships(
    connection: Connection, member: Member, paper_ids: list[str]
) -> dict[str, set[int]]:
    if not paper_ids:
        return {}
    rows = connection.execute(
        select(collection_papers.c.paper_id, collection_papers.c.collection_id)
        .join(
            collections,
            and_(
                collections.c.id == collection_papers.c.collection_id,
                collections.c.user_id == member.id,
            ),
        )
        .where(collection_papers.c.paper_id.in_(paper_ids))
    )
    found: dict[str, set[int]] = {}
    for paper_id, collection_id in rows:
        found.setdefault(paper_id, set()).add(collection_id)
    return found


def collection_papers_list(connection: Connection, collection: Collection) -> list[dict[str, Any]]:
    """The visible papers of a collection, newest added first (what others see of it)."""
    rows = connection.execute(
        select(papers)
        .join(collection_papers, collection_papers.c.paper_id == papers.c.id)
        .where(
            collection_papers.c.collection_id == collection.id,
            papers.c.hidden_at.is_(None),
        )
        .order_by(collection_papers.c.added_at.desc(), papers.c.id)
    ).mappings()
    return [dict(row) for row in rows]
