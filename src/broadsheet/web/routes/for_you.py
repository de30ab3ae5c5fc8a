"""The member's "for you" page, what drives it, and 👎 ("not interested") on any card."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from broadsheet.community.dismissals import dismiss
from broadsheet.community.library import remove_paper
from broadsheet.community.marks import Mark, marked_count, marked_list
from broadsheet.community.votes import set_vote
from broadsheet.feed.for_you import for_you_page
from broadsheet.papers.ids import canonical_id
from broadsheet.web.auth import MemberDep, go_back, require_member
from broadsheet.web.paging import paging
from broadsheet.web.refusals import refusals
from broadsheet.web.render import is_htmx, marks_for, render
from broadsheet.web.security import require_csrf

actions = APIRouter(include_in_schema=False, dependencies=[Depends(require_csrf)])
pages = APIRouter(include_in_schema=False)

PAGE = 20
SIGNALS_PAGE = 50  # papers to a page of each list of signals
SignalsPage = Annotated[int, Query(ge=1, le=100_000)]


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
    kind: Annotated[Mark, Form()],
) -> Response:
    """Take one signal out of the model: withdraw the upvote, unsave, or undo the 👎 (only
    that: withdrawing an upvote leaves the paper saved, with its note and collections)."""
    engine = request.app.state.engine
    paper_id = canonical_id(paper_id)
    if kind == Mark.upvoted:
        try:
            set_vote(engine, member, paper_id, voted=False)
        except LookupError:
            raise HTTPException(404, f"No paper {paper_id!r} here.") from None
    elif kind == Mark.saved:
        remove_paper(engine, member, paper_id)
    else:
        dismiss(engine, member, paper_id, dismissed=False)
    return go_back(request, "/for-you/signals")


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
def signals_page(
    request: Request,
    member: MemberDep,
    upvoted: SignalsPage = 1,
    saved: SignalsPage = 1,
    dismissed: SignalsPage = 1,
) -> HTMLResponse:
    """What drives the member's picks: their upvotes, saves and dismissals, each list paged
    by its own parameter."""
    wanted = {Mark.upvoted: upvoted, Mark.saved: saved, Mark.dismissed: dismissed}
    params = [(kind.value, str(page)) for kind, page in wanted.items() if page > 1]
    lists = []
    with request.app.state.engine.connect() as connection:
        for kind, page in wanted.items():
            total = marked_count(connection, member.id, kind)
            pages = paging("/for-you/signals", params, page, total, SIGNALS_PAGE, kind.value)
            rows = marked_list(connection, member.id, kind, SIGNALS_PAGE, pages.offset)
            lists.append((kind, rows, pages))
    return render(request, "for_you_signals.html", lists=lists)
