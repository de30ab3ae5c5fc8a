"""The member's "for you" page, what drives it, and 👎 ("not interested") on any card."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from broadsheet.community.dismissals import dismiss
from broadsheet.community.library import remove_paper
from broadsheet.community.votes import set_vote
from broadsheet.feed.for_you import for_you_page, member_signal_papers
from broadsheet.papers.ids import canonical_id
from broadsheet.web.auth import MemberDep, go_back, require_member
from broadsheet.web.paging import paging
from broadsheet.web.refusals import refusals
from broadsheet.web.render import is_htmx, marks_for, render
from broadsheet.web.security import require_csrf

actions = APIRouter(include_in_schema=False, dependencies=[Depends(require_csrf)])
pages = APIRouter(include_in_schema=False)

PAGE = 20


@actions.post("/papers/{paper_id:path}/dismiss", response_class=HTMLResponse)
def not_interested(
    request: Request, paper_id: str, dismissed: Annotated[bool, Form()] = True
) -> Response:
    """👎: the paper leaves the member's picks and counts against papers like it."""
    member = require_member(request)
    paper_id = canonical_id(paper_id)
    with refusals():
        dismiss(request.app.state.engine, member, paper_id, dismissed)
    if is_htmx(request):
        return render(request, "_dismiss.html", paper_id=paper_id, is_dismissed=dismissed)
    return go_back(request, "/for-you")


@actions.post("/for-you/signals/remove")
def remove_signal(
    request: Request,
    member: MemberDep,
    paper_id: Annotated[str, Form(max_length=200)],
    kind: Annotated[str, Form(pattern="^(upvoted|saved|dismissed)$")],
) -> Response:
    """Take one signal out of the model: withdraw the upvote, unsave, or undo the 👎."""
    engine = request.app.state.engine
    paper_id = canonical_id(paper_id)
    if kind == "upvoted":
        try:
            set_vote(engine, member, paper_id, voted=False)
        except LookupError:
            raise HTTPException(404, f"No paper {paper_id!r} here.") from None
        remove_paper(engine, member, paper_id)  # an upvoted paper may be saved too
    elif kind == "saved":
        remove_paper(engine, member, paper_id)
    else:
        dismiss(engine, member, paper_id, dismissed=False)
    return RedirectResponse("/for-you/signals", 303)


@pages.get("/for-you", response_class=HTMLResponse)
def for_you(
    request: Request, member: MemberDep, page: Annotated[int, Query(ge=1, le=50)] = 1
) -> HTMLResponse:
    found = for_you_page(
        request.app.state.engine,
        member.id,
        request.app.state.settings.embedding_model,
        limit=PAGE,
        offset=(page - 1) * PAGE,
    )
    shown = [paper["id"] for paper, _ in found.picks]
    more = len(found.picks) == PAGE
    total = (page - 1) * PAGE + len(found.picks) + (1 if more else 0)
    return render(
        request,
        "for_you.html",
        found=found,
        **marks_for(request, shown),
        page=page,
        pages=paging("/for-you", [], page, total, size=PAGE) if page > 1 or more else None,
    )


@pages.get("/for-you/signals", response_class=HTMLResponse)
def signals_page(request: Request, member: MemberDep) -> HTMLResponse:
    signals = member_signal_papers(request.app.state.engine, member.id)
    return render(request, "for_you_signals.html", signals=signals)
