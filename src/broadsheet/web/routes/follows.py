"""Following authors and organisations, and the "Following" page of their papers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from broadsheet.community.follows import Kind, follow, followed, followed_count, following_feed
from broadsheet.feed.authors import MAX_NAME_CHARS
from broadsheet.web.auth import MemberDep, go_back, require_member
from broadsheet.web.paging import paging
from broadsheet.web.refusals import refusals
from broadsheet.web.render import is_htmx, marks_for, render
from broadsheet.web.security import require_csrf
from broadsheet.web.stores import read_engine

actions = APIRouter(include_in_schema=False, dependencies=[Depends(require_csrf)])
pages = APIRouter(include_in_schema=False)

PAGE = 30  # papers to a page
PEOPLE = 50  # authors and organisations to a page


@actions.post("/follow", response_class=HTMLResponse)
def follow_one(
    request: Request,
    kind: Annotated[Kind, Form()],
    name: Annotated[str, Form(max_length=MAX_NAME_CHARS)],
    followed: Annotated[bool, Form()] = True,
) -> Response:
    """Follow or unfollow; htmx gets the redrawn button, a plain form goes back."""
    member = require_member(request)
    with refusals():
        follow(request.app.state.engine, member, kind, name, followed)
    if is_htmx(request):
        return render(request, "_follow.html", kind=kind.value, name=name, is_following=followed)
    return go_back(request, "/following")


@pages.get("/following", response_class=HTMLResponse)
def following_page(
    request: Request,
    member: MemberDep,
    page: Annotated[int, Query(ge=1, le=1000)] = 1,
    people: Annotated[int, Query(ge=1, le=1000)] = 1,
) -> HTMLResponse:
    """Whom the member follows (``people`` pages them) and their papers, newest first."""
    with read_engine(request, own_writes=True).connect() as connection:
        total = followed_count(connection, member.id)
        others = [("page", str(page))] if page > 1 else []
        people_pages = paging("/following", others, people, total, PEOPLE, "people")
        who = followed(connection, member.id, PEOPLE, people_pages.offset)
        cards = following_feed(connection, member.id, limit=PAGE + 1, offset=(page - 1) * PAGE)
    more, cards = len(cards) > PAGE, cards[:PAGE]
    return render(
        request,
        "following.html",
        who=who,
        people_pages=people_pages,
        people=people,
        papers=cards,
        page=page,
        more=more,
        **marks_for(request, [p["id"] for p in cards]),
    )
