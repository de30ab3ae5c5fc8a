"""What admins hid: the hidden papers and comments, each list paged, with a way to show each
again. Only admins see the page; to anyone else it does not exist."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from broadsheet.community.moderation import hidden_comments, hidden_papers
from broadsheet.web.auth import MemberDep
from broadsheet.web.paging import paging
from broadsheet.web.render import render

router = APIRouter(include_in_schema=False)
PAGE = 50


@router.get("/admin/hidden", response_class=HTMLResponse)
def hidden_page(
    request: Request,
    member: MemberDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    comments_page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    hidden: Annotated[str, Query(max_length=100)] = "",
) -> HTMLResponse:
    if not member.is_admin:
        raise HTTPException(404)
    with request.app.state.engine.connect() as connection:
        papers, paper_total = hidden_papers(connection, member, PAGE, (page - 1) * PAGE)
        comments, comment_total = hidden_comments(
            connection, member, PAGE, (comments_page - 1) * PAGE
        )
    params = [("page", str(page)), ("comments_page", str(comments_page))]
    return render(
        request, "admin_hidden.html", papers=papers, comments=comments, just_hidden=hidden,
        paper_pages=paging("/admin/hidden", params, page, paper_total, PAGE),
        comment_pages=paging(
            "/admin/hidden", params, comments_page, comment_total, PAGE, "comments_page"
        ),
    )  # fmt: skip
