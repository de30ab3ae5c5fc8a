"""The member's library on the site: save papers, collections, read/unread, notes, sharing.

Changes are POSTs with the CSRF token (``actions``); pages and downloads are GETs (``pages``).
"""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from feedgen.feed import FeedGenerator

from broadsheet.community.accounts import Member, find_member
from broadsheet.community.library import (
    MAX_COLLECTION_NAME,
    MAX_NOTE,
    Collection,
    Shown,
    Visibility,
    collection_papers_list,
    create_collection,
    delete_collection,
    library,
    member_collections,
    own_collection,
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
from broadsheet.papers.ids import canonical_id
from broadsheet.web.auth import MemberDep, current_member, go_back, require_member
from broadsheet.web.format import xml_text
from broadsheet.web.links import site_url
from broadsheet.web.refusals import refusals
from broadsheet.web.render import is_htmx, render
from broadsheet.web.routes.citations import FORMATS, citation_download
from broadsheet.web.security import require_csrf
from broadsheet.web.stores import read_engine

actions = APIRouter(include_in_schema=False, dependencies=[Depends(require_csrf)])
pages = APIRouter(include_in_schema=False)

CollectionId = Annotated[int, Path(ge=1, le=2**31 - 1)]  # the tables' INTEGER keys
NoteBody = Annotated[str, Form(max_length=2 * MAX_NOTE)]
CollectionName = Annotated[str, Form(max_length=4 * MAX_COLLECTION_NAME)]


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


def _library_query(
    request: Request,
    member: Member,
    show: Shown,
    collection: int | None,
    q: str,
) -> tuple[list[Any], list[Collection], Collection | None]:
    engine = read_engine(request, own_writes=True)
    with engine.connect() as connection, refusals():
        collections = member_collections(connection, member.id)
        chosen = own_collection(connection, member, collection) if collection else None
        entries = library(connection, member, show, collection, q)
    return entries, collections, chosen


@pages.get("/library", response_class=HTMLResponse)
def library_page(
    request: Request,
    member: MemberDep,
    show: Shown = Shown.all,
    collection: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    q: Annotated[str, Query(max_length=500)] = "",
) -> HTMLResponse:
    entries, collections, chosen = _library_query(request, member, show, collection, q)
    return render(
        request,
        "library.html",
        entries=entries,
        collections=collections,
        chosen=chosen,
        show=show,
        library_q=q,
        saved={entry.paper["id"] for entry in entries},
        max_note=MAX_NOTE,
        share_base=site_url(request),
    )


@pages.get("/library.{kind}")
def librarycitation_download(
    request: Request,
    kind: str,
    member: MemberDep,
    show: Shown = Shown.all,
    collection: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    q: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    if kind not in FORMATS:
        raise HTTPException(404, f"No library.{kind}: ask for library.bib or library.ris.")
    entries, _, chosen = _library_query(request, member, show, collection, q)
    name = f"library-{chosen.name}" if chosen else "library"
    return citation_download(request, [entry.paper for entry in entries], name, kind)


def _shared(request: Request, token: str) -> tuple[Collection, list[dict[str, Any]]]:
    with read_engine(request).connect() as connection, refusals():
        found = shared_collection(connection, token)
        return found, collection_papers_list(connection, found)


@pages.get("/c/{token}", response_class=HTMLResponse)
def shared_page(request: Request, token: Annotated[str, Path(max_length=64)]) -> HTMLResponse:
    """A collection shared by link or public: its papers, for anyone with the address."""
    for kind in (*FORMATS, "atom"):
        if token.endswith("." + kind):
            return _shared_file(request, token.removesuffix("." + kind), kind)
    found, papers = _shared(request, token)
    return render(request, "collection.html", collection=found, papers=papers)


def _shared_file(request: Request, token: str, kind: str) -> Response:
    found, papers = _shared(request, token)
    if kind in FORMATS:
        return citation_download(request, papers, found.name, kind)
    base = site_url(request)
    feed = FeedGenerator()
    feed.id(f"{base}/c/{found.share_token}")
    feed.title(xml_text(f"{found.name} · {found.owner}"))
    feed.link(href=f"{base}/c/{found.share_token}", rel="alternate")
    feed.link(href=f"{base}/c/{found.share_token}.atom", rel="self")
    feed.language("en")
    for paper in reversed(papers):  # feedgen puts the last added entry first
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
def member_page(request: Request, username: Annotated[str, Path(max_length=40)]) -> HTMLResponse:
    """A member's profile: their public collections."""
    with read_engine(request).connect() as connection:
        owner = find_member(connection, username)
        found = public_collections(connection, username) if owner else []
    if owner is None:
        raise HTTPException(404, f"No member {username!r} here.")
    return render(request, "member.html", username=owner.username, collections=found)


def paper_library_panel(request: Request, paper_id: str) -> dict[str, Any]:
    """What the paper page shows a member of their library: saved or not, the collections
    (ticked where the paper is in them), read/unread and the note."""
    member = current_member(request)
    if member is None:
        return {}
    with read_engine(request, own_writes=True).connect() as connection:
        return {
            "entry": saved_entry(connection, member, paper_id),
            "collections": member_collections(connection, member.id),
            "max_note": MAX_NOTE,
        }
