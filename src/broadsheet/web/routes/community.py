"""What members do on the pages: upvote, comment, submit papers; what admins do: hide."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from broadsheet.community.accounts import Member
from broadsheet.community.comments import CommentError, add_comment
from broadsheet.community.moderation import (
    NotAllowed,
    NotFound,
    set_comment_hidden,
    set_paper_hidden,
)
from broadsheet.community.submissions import ArxivUnavailable, SubmissionError, submit_paper
from broadsheet.community.votes import NoSuchPaper, set_vote
from broadsheet.web.auth import (
    current_member,
    require_member,
    safe_next,
    sign_in_first,
    vote_intent,
)
from broadsheet.web.queries import canonical_id
from broadsheet.web.render import is_htmx, render
from broadsheet.web.security import require_csrf

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_csrf)])

MemberDep = Annotated[Member, Depends(require_member)]


def _back(request: Request, fallback: str) -> RedirectResponse:
    """After a plain (non-htmx) form POST, return to the page it came from."""
    return RedirectResponse(safe_next(request.headers.get("Referer") or fallback, request), 303)


@router.post("/papers/{paper_id:path}/vote", response_class=HTMLResponse)
def vote(request: Request, paper_id: str) -> Response:
    """Toggle the member's upvote; htmx gets the redrawn button, a plain form a redirect.

    A visitor is sent to sign in, and the upvote is cast once that succeeds.
    """
    member = current_member(request)
    if member is None:
        raise sign_in_first(request, vote_intent(canonical_id(paper_id)))
    try:
        state = set_vote(request.app.state.engine, member, canonical_id(paper_id))
    except NoSuchPaper:
        raise HTTPException(404, f"No paper {paper_id!r} here.") from None
    if is_htmx(request):
        return render(
            request, "_vote.html", paper_id=state.paper_id, votes=state.votes, is_voted=state.voted
        )
    return _back(request, f"/papers/{state.paper_id}")


@router.post("/papers/{paper_id:path}/comments", response_class=HTMLResponse)
def comment(
    request: Request,
    paper_id: str,
    member: MemberDep,
    body: Annotated[str, Form(max_length=20_000)],
) -> Response:
    paper_id = canonical_id(paper_id)
    try:
        added = add_comment(request.app.state.engine, member, paper_id, body)
    except CommentError as exc:
        raise HTTPException(422, str(exc)) from None
    if is_htmx(request):
        return render(request, "_comment.html", comment=added)
    return RedirectResponse(f"/papers/{paper_id}#comment-{added.id}", 303)


@contextmanager
def _moderation_errors() -> Iterator[None]:
    """Moderation refusals as HTTP answers: 403 for non-admins, 404 for what is not there."""
    try:
        yield
    except NotAllowed as exc:
        raise HTTPException(403, str(exc)) from None
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None


@router.post("/papers/{paper_id:path}/hide")
def hide_paper(
    request: Request,
    paper_id: str,
    member: MemberDep,
    hidden: Annotated[bool, Form()] = True,
) -> Response:
    paper_id = canonical_id(paper_id)
    with _moderation_errors():
        set_paper_hidden(request.app.state.engine, member, paper_id, hidden)
    return RedirectResponse("/" if hidden else f"/papers/{paper_id}", 303)


@router.post("/comments/{comment_id}/hide")
def hide_comment(
    request: Request,
    comment_id: int,
    member: MemberDep,
    hidden: Annotated[bool, Form()] = True,
) -> Response:
    with _moderation_errors():
        paper_id = set_comment_hidden(request.app.state.engine, member, comment_id, hidden)
    return RedirectResponse(f"/papers/{paper_id}#comment-{comment_id}", 303)


submit_router = APIRouter(include_in_schema=False)


@submit_router.get("/submit", response_class=HTMLResponse)
def submit_page(
    request: Request, member: MemberDep, paper: Annotated[str, Query(max_length=500)] = ""
) -> Response:
    """The submit form; ``?paper=`` fills in the id (search offers it for papers not here)."""
    return render(request, "submit.html", paper=paper)


@router.post("/submit", response_class=HTMLResponse)
def submit(
    request: Request,
    member: MemberDep,
    paper: Annotated[str, Form(max_length=500)],
) -> Response:
    try:
        submission = submit_paper(
            request.app.state.engine, member, paper, settings=request.app.state.settings
        )
    except SubmissionError as exc:
        status = 503 if isinstance(exc, ArxivUnavailable) else 422
        if is_htmx(request):  # htmx swaps only successful answers: the form comes back with why
            status = 200
        return render(request, "submit.html", status_code=status, error=str(exc), paper=paper)
    if is_htmx(request):  # a full page load of the paper, with its address in the bar
        return Response(status_code=204, headers={"HX-Redirect": f"/papers/{submission.paper_id}"})
    return RedirectResponse(f"/papers/{submission.paper_id}", 303)
