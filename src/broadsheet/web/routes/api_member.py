"""The member's own API, with a personal token (``Authorization: Bearer bst_…``, made in
settings): library, collections, for-you picks, follows and the export of everything.

Every list is paged with ``limit`` and ``offset`` (each with a maximum); the export streams.

Only the token is read here, never the session cookie, so no other site can make a signed-in
browser call these (no CSRF token needed).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from broadsheet.community.accounts import Member
from broadsheet.community.api_tokens import member_for_token
from broadsheet.community.follows import MAX_FOLLOWS, Kind, follow, followed, following_feed
from broadsheet.community.library import (
    MAX_COLLECTIONS,
    MAX_PAGE,
    Shown,
    library,
    member_collections,
    remove_paper,
    save_paper,
    set_note,
    set_read,
)
from broadsheet.community.member_data import export_member
from broadsheet.feed.for_you import for_you_page
from broadsheet.papers.ids import canonical_id
from broadsheet.web.refusals import refusals
from broadsheet.web.routes.api import PaperOut, paper_out

bearer = HTTPBearer(auto_error=False, description="A personal token made in /settings")
router = APIRouter(prefix="/api/me", tags=["member"])


def token_member(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Member:
    member = None
    if credentials is not None and credentials.scheme.lower() == "bearer":
        member = member_for_token(request.app.state.engine, credentials.credentials)
    if member is None:
        raise HTTPException(
            401,
            "A valid API token is needed: make one in your settings and send it as "
            "'Authorization: Bearer <token>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return member


MemberDep = Annotated[Member, Depends(token_member)]
PAGED = "Fewer than `limit` items means this is the last page."


def _limit(most: int) -> Any:
    return Query(ge=1, le=most, description=f"Items to a page (at most {most}). {PAGED}")


Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip")]


def _when(value: datetime | None) -> str | None:
    return value.replace(tzinfo=UTC).isoformat() if value is not None else None


class SavedOut(BaseModel):
    paper: PaperOut
    saved_at: str
    read_at: str | None = Field(description="null: unread")
    note: str | None = Field(description="The private note, markdown as written")
    collections: list[int] = Field(description="Ids of the member's collections holding it")


class CollectionOut(BaseModel):
    id: int
    name: str
    visibility: str = Field(description="private, link or public")
    papers: int
    share_path: str | None = Field(description="Where others see it; null while private")


class PickOut(BaseModel):
    paper: PaperOut
    score: float
    because: str = Field(description="Title of the liked paper it resembles")
    because_id: str
    verb: str = Field(description="upvoted or saved")


class FollowedOut(BaseModel):
    kind: Kind
    name: str = Field(description="The author's stored name, or the organisation's slug")
    label: str


class SavedIn(BaseModel):
    read: bool | None = Field(None, description="Mark read (true) or unread (false)")
    note: str | None = Field(None, description="Replace the private note ('' clears it)")


class FollowIn(BaseModel):
    kind: Kind
    name: str = Field(max_length=300)


@router.get("/library", response_model=list[SavedOut])
def my_library(
    request: Request,
    member: MemberDep,
    show: Shown = Shown.all,
    collection: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    q: Annotated[str, Query(max_length=500)] = "",
    limit: Annotated[int, _limit(MAX_PAGE)] = 100,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    """A page of saved papers, newest saved first: read or unread, in one collection, or
    holding words."""
    with refusals(), request.app.state.engine.connect() as connection:
        entries = library(connection, member, show, collection, q, limit, offset)
    return [
        {
            "paper": paper_out(e.paper),
            "saved_at": _when(e.saved_at),
            "read_at": _when(e.read_at),
            "note": e.note,
            "collections": sorted(e.collection_ids),
        }
        for e in entries
    ]


@router.put("/library/{paper_id:path}", status_code=204)
def save_to_library(
    request: Request, paper_id: str, member: MemberDep, change: SavedIn | None = None
) -> Response:
    """Save a paper (idempotent), and optionally mark it read or unread or set its note."""
    engine = request.app.state.engine
    paper_id = canonical_id(paper_id)
    with refusals():
        save_paper(engine, member, paper_id)
        if change is not None and change.read is not None:
            set_read(engine, member, paper_id, change.read)
        if change is not None and change.note is not None:
            set_note(engine, member, paper_id, change.note)
    return Response(status_code=204)


@router.delete("/library/{paper_id:path}", status_code=204)
def remove_from_library(request: Request, paper_id: str, member: MemberDep) -> Response:
    """Remove a paper from the library and from every collection (nothing if it was not)."""
    remove_paper(request.app.state.engine, member, canonical_id(paper_id))
    return Response(status_code=204)


@router.get("/collections", response_model=list[CollectionOut])
def my_collections(
    request: Request,
    member: MemberDep,
    limit: Annotated[int, _limit(MAX_COLLECTIONS)] = MAX_COLLECTIONS,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    """The member's collections by name; ``papers`` counts those shown (not hidden ones)."""
    with request.app.state.engine.connect() as connection:
        found = member_collections(connection, member.id, limit, offset)
    return [
        {
            "id": c.id,
            "name": c.name,
            "visibility": c.visibility.value,
            "papers": c.papers,
            "share_path": None if c.visibility.value == "private" else f"/c/{c.share_token}",
        }
        for c in found
    ]


@router.get("/for-you", response_model=list[PickOut])
def my_picks(
    request: Request,
    member: MemberDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1000)] = 0,
) -> list[dict[str, Any]]:
    """Papers ranked by the member's own model (empty until they upvote or save some)."""
    found = for_you_page(
        request.app.state.engine,
        member.id,
        request.app.state.settings.embedding_model,
        limit=limit,
        offset=offset,
    )
    return [
        {
            "paper": paper_out(paper),
            "score": round(pick.score, 6),
            "because": pick.because,
            "because_id": pick.because_id,
            "verb": pick.verb,
        }
        for paper, pick in found.picks
    ]


@router.get("/following", response_model=list[FollowedOut])
def my_follows(
    request: Request,
    member: MemberDep,
    limit: Annotated[int, _limit(2 * MAX_FOLLOWS)] = MAX_FOLLOWS,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    """Whom the member follows: authors by name, then organisations by slug."""
    with request.app.state.engine.connect() as connection:
        return [
            {"kind": f.kind, "name": f.name, "label": f.label}
            for f in followed(connection, member.id, limit, offset)
        ]


@router.get("/following/papers", response_model=list[PaperOut])
def my_following_papers(
    request: Request,
    member: MemberDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 30,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> list[dict[str, Any]]:
    """Papers by whom the member follows, newest first."""
    with request.app.state.engine.connect() as connection:
        found = following_feed(connection, member.id, limit=limit, offset=offset)
    return [paper_out(p) for p in found]


@router.post("/following", status_code=204)
def follow_one(request: Request, member: MemberDep, target: FollowIn) -> Response:
    with refusals():
        follow(request.app.state.engine, member, target.kind, target.name)
    return Response(status_code=204)


@router.delete("/following", status_code=204)
def unfollow_one(request: Request, member: MemberDep, target: FollowIn) -> Response:
    with refusals():
        follow(request.app.state.engine, member, target.kind, target.name, followed=False)
    return Response(status_code=204)


@router.get("/export", response_class=StreamingResponse)
def my_export(request: Request, member: MemberDep) -> StreamingResponse:
    """Everything the member owns, as the settings page's download gives it (one JSON
    document, streamed)."""
    return StreamingResponse(
        export_member(request.app.state.engine, member.id),
        media_type="application/json; charset=utf-8",
    )
