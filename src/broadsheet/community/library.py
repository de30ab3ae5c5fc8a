"""A member's library: saved papers with read/unread and a private note, and named collections.

Saving is idempotent (a double click saves once); putting a paper in a collection saves it;
removing it from the library takes it out of every collection. Collections are private,
shared by an unguessable link, or public on the member's profile.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    RowMapping,
    ScalarSelect,
    Select,
    and_,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from broadsheet.community import ratelimit
from broadsheet.community.accounts import Member
from broadsheet.community.comments import render_markdown
from broadsheet.db.bulk import insert_ignoring_conflicts
from broadsheet.db.keyset import keyset_batches
from broadsheet.db.schema import (
    authors,
    collection_papers,
    collections,
    organisations,
    paper_authors,
    papers,
    saved_papers,
    users,
)
from broadsheet.feed.cards import card
from broadsheet.feed.views import CARD_COLUMNS
from broadsheet.names import fold

MAX_NOTE = 10_000
MAX_COLLECTION_NAME = 80
MAX_COLLECTIONS = 200  # per member
SAVES = ratelimit.Limit("saves", hits=300, seconds=600)  # saves, notes and collection changes
# Views of shared and public collections (pages, feeds, downloads) per client address.
SHARED_VIEWS = ratelimit.Limit("shared_collection_view", hits=60, seconds=60)
PAGE = 30  # papers to a page of a library or collection, collections to a profile page
MAX_PAGE = 500  # the most the API gives at once
FEED_ENTRIES = 50  # papers in a collection's Atom feed, newest added first


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


def new_share_token() -> str:
    """An unguessable address for a shared collection (``/c/{token}``)."""
    return secrets.token_urlsafe(16)


def not_hidden(paper_id: ColumnElement[Any]) -> ColumnElement[bool]:
    """The paper ``paper_id`` names is not hidden by a moderator: checked against the few
    hidden papers (a partial index holds just them), so counting a long list of saved papers
    reads no paper rows."""
    hidden = papers.alias("hidden_papers")  # its own rows, whatever the outer query joins
    return paper_id.not_in(select(hidden.c.id).where(hidden.c.hidden_at.is_not(None)))


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
        collections.c.user_id == member.id, collections.c.name_key == fold(name)
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
        "share_token": new_share_token(),
        "created_at": _now(),
    }
    try:  # a concurrent twin's name fails here (the transaction ends), not with a 500
        new_id = connection.execute(
            collections.insert().values(**row, name_key=fold(name)).returning(collections.c.id)
        ).scalar_one()
    except IntegrityError:
        raise LibraryError(f"Collection name is taken: you have a collection “{name}”.") from None
    return Collection(id=new_id, **{**row, "visibility": Visibility(row["visibility"])})


def _require_own(connection: Connection, member: Member, collection_id: int) -> None:
    """NotFound unless the collection is the member's (without counting its papers)."""
    found = connection.execute(
        select(collections.c.id).where(
            collections.c.id == collection_id, collections.c.user_id == member.id
        )
    ).first()
    if found is None:
        raise NotFound(f"No collection {collection_id} of yours here.")


def own_collection(connection: Connection, member: Member, collection_id: int) -> Collection:
    """The member's collection, or NotFound (another member's is not found either)."""
    found = _collections(connection, [collections.c.id == collection_id])
    if not found or found[0].user_id != member.id:
        raise NotFound(f"No collection {collection_id} of yours here.")
    return found[0]


def chosen_collection(
    member: Member, collection_id: int | None, among: Sequence[Collection]
) -> Collection | None:
    """The collection ``collection_id`` of the member's collections ``among`` (None when none
    is asked for; NotFound when it is not theirs)."""
    if collection_id is None:
        return None
    found = [c for c in among if c.id == collection_id and c.user_id == member.id]
    if not found:
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
    """Rename the collection or change who sees it. Made private, or shared again after, it
    gets a new link: an address handed out before never opens it again."""
    with engine.begin() as connection:
        ratelimit.hit(connection, SAVES, f"member:{member.id}")
        current = own_collection(connection, member, collection_id)
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = checked_name(name)
            values["name_key"] = fold(values["name"])
            if _name_taken(connection, member, values["name"], collection_id):
                raise LibraryError(
                    f"Collection name is taken: you have a collection “{values['name']}”."
                )
        if visibility is not None:
            values["visibility"] = Visibility(visibility).value
            if (current.visibility == Visibility.private) != (visibility == Visibility.private):
                values["share_token"] = new_share_token()  # an old link never opens it again
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


def _visible_count() -> ScalarSelect[int]:
    """The number of a collection's papers that are shown (hidden papers are not counted)."""
    return (
        select(func.count())
        .select_from(collection_papers)
        .where(
            collection_papers.c.collection_id == collections.c.id,
            not_hidden(collection_papers.c.paper_id),
        )
        .scalar_subquery()
    )


def _collections(
    connection: Connection,
    where: Sequence[Any],
    limit: int | None = None,
    offset: int = 0,
    counted: bool = True,
) -> list[Collection]:
    count = _visible_count() if counted else literal(0)
    query = (
        select(collections, count.label("papers"), users.c.username.label("owner"))
        .join(users, users.c.id == collections.c.user_id)
        .where(*where)
        .order_by(func.lower(collections.c.name), collections.c.id)
        .limit(limit)
        .offset(offset)
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


def member_collections(
    connection: Connection,
    member_id: int,
    limit: int | None = None,
    offset: int = 0,
    counted: bool = True,
) -> list[Collection]:
    """The member's collections (at most ``MAX_COLLECTIONS``), or a page of them; with
    ``counted=False`` their ``papers`` are not counted (0), which reads no paper."""
    where = [collections.c.user_id == member_id]
    return _collections(connection, where, limit, offset, counted)


def _public(username: str) -> list[Any]:
    return [
        func.lower(users.c.username) == username.lower(),
        collections.c.visibility == Visibility.public.value,
    ]


def public_collections(
    connection: Connection, username: str, limit: int = PAGE, offset: int = 0
) -> list[Collection]:
    """A page of the public collections on a member's profile (any letter case of the name)."""
    return _collections(connection, _public(username), limit, offset)


def public_collection_count(connection: Connection, username: str) -> int:
    query = (
        select(func.count())
        .select_from(collections)
        .join(users, users.c.id == collections.c.user_id)
        .where(*_public(username))
    )
    return connection.execute(query).scalar_one()


def _spellings(word: str) -> set[str]:
    """``word`` as SQL's case-insensitive match should look for it: SQLite (and PostgreSQL
    in the C locale) fold only ASCII letters, so other words are also tried in upper case and
    capitalised, as titles and names write them."""
    if word.isascii():
        return {word}
    return {word, word.lower(), word.upper(), word.capitalize()}


def _holds(word: str) -> ColumnElement[bool]:
    """A saved paper holds ``word`` in its title, abstract, id, an author's name or the note."""
    columns = (papers.c.title, papers.c.abstract, papers.c.id, saved_papers.c.note)
    found = []
    for spelling in _spellings(word):
        found += [column.icontains(spelling, autoescape=True) for column in columns]
        found.append(
            exists().where(
                paper_authors.c.paper_id == papers.c.id,
                authors.c.id == paper_authors.c.author_id,
                authors.c.name.icontains(spelling, autoescape=True),
            )
        )
    return or_(*found)


def _library_where(
    connection: Connection, member: Member, shown: Shown, collection_id: int | None, query: str
) -> list[Any]:
    """What selects the member's visible saved papers: read or unread, in one collection (of
    theirs, else NotFound), holding every word of ``query``."""
    where = [saved_papers.c.user_id == member.id, not_hidden(saved_papers.c.paper_id)]
    if shown == Shown.unread:
        where.append(saved_papers.c.read_at.is_(None))
    elif shown == Shown.read:
        where.append(saved_papers.c.read_at.is_not(None))
    if collection_id is not None:
        _require_own(connection, member, collection_id)
        where.append(
            exists().where(
                collection_papers.c.collection_id == collection_id,
                collection_papers.c.paper_id == saved_papers.c.paper_id,
            )
        )
    where += [_holds(word) for word in query.split()]
    return where


def _saved(where: list[Any], query: str) -> Select[Any]:
    """The saved papers ``where`` selects; the papers' rows are read only to search them."""
    found = select(saved_papers.c.paper_id, saved_papers.c.saved_at)
    if query.split():
        found = found.join(papers, papers.c.id == saved_papers.c.paper_id)
    return found.where(*where)


def library(
    connection: Connection,
    member: Member,
    shown: Shown = Shown.all,
    collection_id: int | None = None,
    query: str = "",
    limit: int = PAGE,
    offset: int = 0,
) -> list[SavedPaper]:
    """A page of the member's saved papers, newest saved first: read or unread, in one
    collection, or holding every word of ``query`` (in the title, abstract, authors, id or
    the note, in any letter case)."""
    where = _library_where(connection, member, shown, collection_id, query)
    page = (
        _saved(where, query)
        .order_by(saved_papers.c.saved_at.desc(), saved_papers.c.paper_id)
        .limit(limit)
        .offset(offset)
        .subquery()
    )
    rows = connection.execute(
        select(
            *CARD_COLUMNS,
            papers.c.version,
            papers.c.categories,
            saved_papers.c.saved_at,
            saved_papers.c.read_at,
            saved_papers.c.note,
        )
        .select_from(page)
        .join(
            saved_papers,
            and_(saved_papers.c.user_id == member.id, saved_papers.c.paper_id == page.c.paper_id),
        )
        .join(papers, papers.c.id == page.c.paper_id)
        .outerjoin(organisations, organisations.c.id == papers.c.organisation_id)
        .order_by(page.c.saved_at.desc(), page.c.paper_id)
    ).mappings()
    entries = [dict(row) for row in rows]
    memberships = _memberships(connection, member, [e["id"] for e in entries])
    return [
        SavedPaper(
            paper=card({k: v for k, v in e.items() if k not in ("saved_at", "read_at", "note")}),
            saved_at=e["saved_at"],
            read_at=e["read_at"],
            note=e["note"],
            collection_ids=frozenset(memberships.get(e["id"], ())),
        )
        for e in entries
    ]


def library_size(
    connection: Connection,
    member: Member,
    shown: Shown = Shown.all,
    collection_id: int | None = None,
    query: str = "",
) -> int:
    """How many saved papers ``library`` pages through with the same filters."""
    where = _library_where(connection, member, shown, collection_id, query)
    counted = _saved(where, query).subquery()
    return connection.execute(select(func.count()).select_from(counted)).scalar_one()


def hidden_saved_count(connection: Connection, member: Member) -> int:
    """How many of the member's saved papers an admin has hidden (lists leave them out and
    say so)."""
    return connection.execute(
        select(func.count())
        .select_from(saved_papers.join(papers, papers.c.id == saved_papers.c.paper_id))
        .where(saved_papers.c.user_id == member.id, papers.c.hidden_at.is_not(None))
    ).scalar_one()


def library_papers(
    engine: Engine,
    member: Member,
    shown: Shown = Shown.all,
    collection_id: int | None = None,
    query: str = "",
) -> Iterator[list[dict[str, Any]]]:
    """Every saved paper the filters select, newest saved first, as stored rows in batches
    (for downloads). A collection not the member's is refused (NotFound) here, before any
    batch is read."""
    with engine.connect() as connection:
        where = _library_where(connection, member, shown, collection_id, query)
    rows = (
        select(papers, saved_papers.c.saved_at)
        .join(saved_papers, saved_papers.c.paper_id == papers.c.id)
        .where(*where)
    )
    order = [(saved_papers.c.saved_at, True), (papers.c.id, False)]
    return _dicts(keyset_batches(engine, rows, order))


def _dicts(batches: Iterator[list[RowMapping]]) -> Iterator[list[dict[str, Any]]]:
    for batch in batches:
        yield [dict(row) for row in batch]


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


def _in_collection(collection: Collection) -> list[Any]:
    return [
        collection_papers.c.collection_id == collection.id,
        not_hidden(collection_papers.c.paper_id),
    ]


def collection_cards(
    connection: Connection, collection: Collection, limit: int = PAGE, offset: int = 0
) -> list[dict[str, Any]]:
    """A page of the collection's visible papers, newest added first, as cards (what others
    see of it); ``collection.papers`` counts them all."""
    page = (
        select(collection_papers.c.paper_id, collection_papers.c.added_at)
        .where(*_in_collection(collection))
        .order_by(collection_papers.c.added_at.desc(), collection_papers.c.paper_id)
        .limit(limit)
        .offset(offset)
        .subquery()
    )
    rows = connection.execute(
        select(*CARD_COLUMNS)
        .select_from(page)
        .join(papers, papers.c.id == page.c.paper_id)
        .outerjoin(organisations, organisations.c.id == papers.c.organisation_id)
        .order_by(page.c.added_at.desc(), page.c.paper_id)
    ).mappings()
    return [card(dict(row)) for row in rows]


def collection_papers_list(
    engine: Engine, collection: Collection, batch: int | None = None
) -> Iterator[list[dict[str, Any]]]:
    """The collection's visible papers, newest added first, as stored rows in batches (for
    downloads and its feed)."""
    rows = (
        select(papers, collection_papers.c.added_at)
        .join(collection_papers, collection_papers.c.paper_id == papers.c.id)
        .where(*_in_collection(collection))
    )
    order = [(collection_papers.c.added_at, True), (papers.c.id, False)]
    sized = {} if batch is None else {"size": batch}
    return _dicts(keyset_batches(engine, rows, order, **sized))
