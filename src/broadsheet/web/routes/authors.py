"""Author pages: everything an author wrote that is shown here, and their co-authors."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse

from broadsheet.community.follows import Kind, is_following
from broadsheet.feed.authors import MAX_NAME_CHARS, author_page
from broadsheet.web.auth import current_member
from broadsheet.web.queries import PAGE_SIZE
from broadsheet.web.render import marks_for, render
from broadsheet.web.stores import read_engine

router = APIRouter(include_in_schema=False)


@router.get("/authors/{name:path}", response_class=HTMLResponse)
def author(
    request: Request,
    name: Annotated[str, Path(max_length=MAX_NAME_CHARS)],
    page: Annotated[int, Query(ge=1, le=1000)] = 1,
) -> HTMLResponse:
    with read_engine(request).connect() as connection:
        found = author_page(connection, name, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        following = found is not None and is_following(
            connection, current_member(request), Kind.author, found.name
        )
    if found is None:
        raise HTTPException(404, f"No author {name!r} here.")
    marks = marks_for(request, [p["id"] for p in found.papers])
    return render(
        request,
        "author.html",
        author=found,
        page=page,
        page_size=PAGE_SIZE,
        **marks,
        is_following=following,
    )
