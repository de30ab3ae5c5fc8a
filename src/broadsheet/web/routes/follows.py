"""Following authors and organisations, and the "Following" page of their papers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from broadsheet.community.accounts import Member
from broadsheet.community.follows import Kind, follow, followed, following_feed
from broadsheet.community.library import LibraryError, NotFound
from broadsheet.feed.authors import MAX_NAME_CHARS
from broadsheet.web.auth import current_member, require_member, safe_next, sign_in_first
from broadsheet.web.render import is_htmx, render, voted_for
from broadsheet.web.security import require_csrf
from broadsheet.web.stores import read_engine

actions = APIRouter(include_in_schema=False, dependencies=[Depends(require_csrf)])
pages = APIRouter(include_in_schema=False)

MemberDep = Annotated[Member, Depends(require_member)]
PAGE = 30


@actions.post("/follow", response_class=HTMLResponse)
def follow_one(
    request: Request,
    kind: Annotated[Kind, Form()],
    name: Annotated[str, Form(max_length=MAX_NAME_CHARS)],
    followed: Annotated[bool, Form()] = True,
) -> Response:
    """Follow or unfollow; htmx gets the redrawn button, a plain form goes back."""
    member = current_member(request)
    if member is None:
        raise sign_in_first(request)
    try:
        follow(request.app.state.engine, member, kind, name, followed)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except LibraryError as exc:
        raise HTTPException(422, str(exc)) from None
    if is_htmx(request):
        return render(request, "_follow.html", kind=kind.value, name=name, is_following=followed)
    return RedirectResponse(safe_next(request.headers.get("Referer") or "/following", request), 303)


@pages.get("/following", response_class=HTMLResponse)
def following_page(
    request: Request, member: MemberDep, page: Annotated[int, Query(ge=1, le=1000)] = 1
) -> HTMLResponse:
    with read_engine(request, own_writes=True).connect() as connection:
        who = followed(connection, member.id)
        cards = following_feed(connection, member.id, limit=PAGE + 1, offset=(page - 1) * PAGE)
    more, cards = len(cards) > PAGE, cards[:PAGE]
    return render(
        request,
        "following.html",
        who=who,
        papers=cards,
        page=page,
        more=more,
        voted=voted_for(request, [p["id"] for p in cards]),
    )
