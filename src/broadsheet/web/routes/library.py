"""The member's library on the site: save papers, collections, read/unread, notes, sharing.

Changes are POSTs with the CSRF token (``actions``); pages and downloads are GETs (``pages``).
Every list is paged (``PAGE`` to a page) and every download streams in batches, so neither a
page nor a download grows with the library; shared and public collections count their views
per client address (``SHARED_VIEWS``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from itertools import chain
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from feedgen.feed import FeedGenerator

from broadsheet.community import ratelimit
from broadsheet.community.accounts import find_member
from broadsheet.community.library import (
    FEED_ENTRIES,
    MAX_COLLECTION_NAME,
    MAX_NOTE,
    PAGE,
    SHARED_VIEWS,
    Collection,
    Shown,
    Visibility,
    chosen_collection,
    collection_cards,
    collection_papers_list,
    create_collection,
    delete_collection,
    hidden_saved_count,
    library,
    library_papers,
    library_size,
    member_collections,
    own_collection,
    public_collection_count,
    public_collections,
    remove_paper,
    save_paper,
    saved_entry,
    set_note,
    set_paper_collections,
    set_read,
    shared_collection,
    update_collection,
)
from broadsheet.papers.citations import bibtex_entry, keyed, ris_record
from broadsheet.papers.ids import canonical_id
from broadsheet.web.auth import MemberDep, client_address, current_member, go_back, require_member
from broadsheet.web.downloads import attachment
from broadsheet.web.format import xml_text
from broadsheet.web.links import site_url
from broadsheet.web.paging import Paging, paging
from broadsheet.web.refusals import refusals
from broadsheet.web.render import is_htmx, marks_for, render
from broadsheet.web.routes.citations import FORMATS
from broadsheet.web.security import require_csrf
from broadsheet.web.stores import read_engine

actions = APIRouter(include_in_schema=False, dependencies=[Depends(require_csrf)])
pages = APIRouter(include_in_schema=False)

CollectionId = Annotated[int, Path(ge=1, le=2**31 - 1)]  # the tables' INTEGER keys
NoteBody = Annotated[str, Form(max_length=2 * MAX_NOTE)]
CollectionName = Annotated[str, Form(max_length=4 * MAX_COLLECTION_NAME)]
PageNumber = Annotated[int, Query(ge=1, le=100_000)]
ENTRIES = {"bib": bibtex_entry, "ris": ris_record}


@actions.post("/papers/{paper_id:path}/save", response_class=HTMLResponse)
def save(request: Request, paper_id: str, saved: Annotated[bool, Form()] = True) -> Response:
    """Save (or with ``saved=false`` remove) a paper; htmx gets the redrawn button."""
    member = require_member(request)
    paper_id = canonical_id(paper_id)
    engine = request.app.state.engine
    with refusals():
        if saved:
            save_paper(engine, member, paper_id)
        else:
            remove_paper(engine, member, paper_id)
    if is_htmx(request):
        return render(request, "_save.html", paper_id=paper_id, is_saved=saved)
    return go_back(request, f"/papers/{paper_id}")


@actions.post("/papers/{paper_id:path}/collections")
def put_in_collections(
    request: Request,
    paper_id: str,
    member: MemberDep,
    collection: Annotated[list[int], Form()] = [],  # noqa: B006 (FastAPI copies defaults)
    new_collection: CollectionName = "",
) -> Response:
    """The paper in exactly the ticked collections (and a new one, when named)."""
    paper_id = canonical_id(paper_id)
    with refusals():
        set_paper_collections(
            request.app.state.engine, member, paper_id, collection, new_collection
        )
    return RedirectResponse(f"/papers/{paper_id}?saved=1#save", 303)


@actions.post("/papers/{paper_id:path}/read")
def mark_read(
    request: Request, paper_id: str, member: MemberDep, read: Annotated[bool, Form()] = True
) -> Response:
    paper_id = canonical_id(paper_id)
    with refusals():
        set_read(request.app.state.engine, member, paper_id, read)
    return go_back(request, "/library")


@actions.post("/papers/{paper_id:path}/note")
def note(request: Request, paper_id: str, member: MemberDep, note: NoteBody = "") -> Response:
    paper_id = canonical_id(paper_id)
    with refusals():
        set_note(request.app.state.engine, member, paper_id, note)
    return go_back(request, "/library")


@actions.post("/library/collections")
def new_collection(
    request: Request,
    member: MemberDep,
    name: CollectionName,
    visibility: Annotated[Visibility, Form()] = Visibility.private,
) -> Response:
    with refusals():
        made = create_collection(request.app.state.engine, member, name, visibility)
    return RedirectResponse(f"/library?collection={made.id}", 303)


@actions.post("/library/collections/{collection_id}")
def change_collection(
    request: Request,
    collection_id: CollectionId,
    member: MemberDep,
    name: CollectionName,
    visibility: Annotated[Visibility, Form()],
) -> Response:
    with refusals():
        update_collection(request.app.state.engine, member, collection_id, name, visibility)
    return RedirectResponse(f"/library?collection={collection_id}", 303)


@actions.post("/library/collections/{collection_id}/delete")
def remove_collection(request: Request, collection_id: CollectionId, member: MemberDep) -> Response:
    with refusals():
        delete_collection(request.app.state.engine, member, collection_id)
    return RedirectResponse("/library", 303)


def _library_params(show: Shown, collection: int | None, q: str) -> list[tuple[str, str]]:
    """The library address's parameters, the defaults left out (links are built from these)."""
    params = [("collection", str(collection))] if collection else []
    params += [("show", show.value)] if show != Shown.all else []
    return params + ([("q", q)] if q else [])


@pages.get("/library", response_class=HTMLResponse)
def library_page(
    request: Request,
    member: MemberDep,
    show: Shown = Shown.all,
    collection: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    q: Annotated[str, Query(max_length=500)] = "",
    page: PageNumber = 1,
) -> HTMLResponse:
    """A page of the member's saved papers (all, unread or read; one collection; search)."""
    with read_engine(request, own_writes=True).connect() as connection, refusals():
        collections = member_collections(connection, member.id)
        chosen = chosen_collection(member, collection, collections)
        total = library_size(connection, member, show, collection, q)
        pages = paging("/library", _library_params(show, collection, q), page, total, PAGE)
        entries = library(connection, member, show, collection, q, PAGE, pages.offset)
        hidden = hidden_saved_count(connection, member)
    return render(
        request,
        "library.html",
        hidden_saved=hidden,
        entries=entries,
        collections=collections,
        chosen=chosen,
        show=show,
        library_q=q,
        pages=pages,
        export_query=pages.url(1).partition("?")[2],
        **marks_for(request, [entry.paper["id"] for entry in entries]),
        max_note=MAX_NOTE,
        share_base=site_url(request),
    )


@pages.get("/library.{kind}")
def library_download(
    request: Request,
    kind: str,
    member: MemberDep,
    show: Shown = Shown.all,
    collection: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    q: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    """Every saved paper the page's filters select (not one page), streamed."""
    if kind not in FORMATS:
        raise HTTPException(404, f"No library.{kind}: ask for library.bib or library.ris.")
    engine = read_engine(request, own_writes=True)
    with refusals():
        chosen = None
        if collection:
            with engine.connect() as connection:
                chosen = own_collection(connection, member, collection)
        batches = library_papers(engine, member, show, collection, q)
    name = f"library-{chosen.name}" if chosen else "library"
    return citation_stream(request, batches, name, kind)


def citation_stream(
    request: Request, batches: Iterator[list[dict[str, Any]]], name: str, kind: str
) -> StreamingResponse:
    """Papers read in ``batches`` as a ``.bib`` or ``.ris`` attachment, written as they are
    read (with keys unique over the whole file)."""
    write, media_type, base = ENTRIES[kind], FORMATS[kind][1], site_url(request)

    def body() -> Iterator[str]:
        papers = chain.from_iterable(batches)
        written: list[str] = []
        for n, (paper, key) in enumerate(keyed(papers)):
            written.append(("\n" if n else "") + write(paper, key, base))
            if len(written) == 100:
                yield "".join(written)
                written = []
        if written:
            yield "".join(written)

    disposition = {"Content-Disposition": attachment(name, kind)}
    return StreamingResponse(body(), media_type=media_type, headers=disposition)


def _shared(request: Request, token: str) -> Collection:
    """The collection shared at ``token``, once this client address may see one more."""
    ratelimit.check(request.app.state.engine, SHARED_VIEWS, f"address:{client_address(request)}")
    with read_engine(request).connect() as connection, refusals():
        return shared_collection(connection, token)


@pages.get("/c/{token}", response_class=HTMLResponse)
def shared_page(
    request: Request, token: Annotated[str, Path(max_length=64)], page: PageNumber = 1
) -> Response:
    """A collection shared by link or public: a page of its papers, for anyone with the
    address (``.bib``, ``.ris`` and ``.atom`` after the token: its downloads and feed)."""
    for kind in (*FORMATS, "atom"):
        if token.endswith("." + kind):
            return _shared_file(request, token.removesuffix("." + kind), kind)
    found = _shared(request, token)
    pages = paging(f"/c/{found.share_token}", [], page, found.papers, PAGE)
    with read_engine(request).connect() as connection:
        cards = collection_cards(connection, found, PAGE, pages.offset)
    return render(
        request,
        "collection.html",
        collection=found,
        papers=cards,
        pages=pages,
        **marks_for(request, [paper["id"] for paper in cards]),
    )


def _shared_file(request: Request, token: str, kind: str) -> Response:
    found = _shared(request, token)
    engine = read_engine(request)
    if kind in FORMATS:
        return citation_stream(request, collection_papers_list(engine, found), found.name, kind)
    newest = next(collection_papers_list(engine, found, batch=FEED_ENTRIES), [])
    base = site_url(request)
    feed = FeedGenerator()
    feed.id(f"{base}/c/{found.share_token}")
    feed.title(xml_text(f"{found.name} · {found.owner}"))
    feed.link(href=f"{base}/c/{found.share_token}", rel="alternate")
    feed.link(href=f"{base}/c/{found.share_token}.atom", rel="self")
    feed.language("en")
    for paper in reversed(newest):  # feedgen puts the last added entry first
        entry = feed.add_entry()
        entry.id(f"{base}/papers/{paper['id']}")
        entry.title(xml_text(paper["title"]))
        entry.link(href=f"{base}/papers/{paper['id']}")
        entry.summary(xml_text(paper["abstract"]))
        for name in paper.get("authors") or []:
            entry.author({"name": xml_text(name)})
        when = paper.get("published_at") or paper["modified_at"]
        entry.updated(when.replace(tzinfo=UTC))
    return Response(feed.atom_str(pretty=True), media_type="application/atom+xml; charset=utf-8")


@pages.get("/members/{username}", response_class=HTMLResponse)
def member_page(
    request: Request, username: Annotated[str, Path(max_length=40)], page: PageNumber = 1
) -> HTMLResponse:
    """A member's profile: a page of their public collections."""
    with read_engine(request).connect() as connection:
        owner = find_member(connection, username)
        if owner is None:
            raise HTTPException(404, f"No member {username!r} here.")
        total = public_collection_count(connection, owner.username)
        pages: Paging = paging(f"/members/{owner.username}", [], page, total, PAGE)
        found = public_collections(connection, owner.username, PAGE, pages.offset)
    return render(request, "member.html", username=owner.username, collections=found, pages=pages)


def paper_library_panel(request: Request, paper_id: str) -> dict[str, Any]:
    """What the paper page shows a member of their library: saved or not, the collections
    (ticked where the paper is in them), read/unread and the note."""
    member = current_member(request)
    if member is None:
        return {}
    with read_engine(request, own_writes=True).connect() as connection:
        return {
            "entry": saved_entry(connection, member, paper_id),
            "collections": member_collections(connection, member.id, counted=False),
            "max_note": MAX_NOTE,
        }
