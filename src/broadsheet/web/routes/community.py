"""What members do on the pages: upvote, comment (and edit or delete their comments), submit
papers; what admins do: hide, and delete comments."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from broadsheet.community import reports
from broadsheet.community.accounts import Member
from broadsheet.community.comments import (
    MAX_COMMENT,
    CommentError,
    add_comment,
    comment_to_edit,
    delete_comment,
    edit_comment,
)
from broadsheet.community.moderation import (
    set_comment_hidden,
    set_paper_hidden,
)
from broadsheet.community.submissions import ArxivUnavailable, SubmissionError, submit_paper
from broadsheet.community.votes import NoSuchPaper, set_vote
from broadsheet.papers.ids import canonical_id
from broadsheet.web.auth import MemberDep, current_member, go_back, sign_in_first, vote_intent
from broadsheet.web.refusals import refusals
from broadsheet.web.render import is_htmx, render
from broadsheet.web.security import require_csrf

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_csrf)])

# Room for a too-long comment to come back with a plain answer; beyond it, the form is refused.
CommentBody = Annotated[str, Form(max_length=2 * MAX_COMMENT)]
CommentId = Annotated[int, Path(ge=1, le=2**63 - 1)]  # what the store's integer key can hold


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
    return go_back(request, f"/papers/{state.paper_id}")


@router.post("/papers/{paper_id:path}/comments", response_class=HTMLResponse)
def comment(
    request: Request,
    paper_id: str,
    member: MemberDep,
    body: CommentBody,
) -> Response:
    """Add the member's comment; htmx gets it for the list, a plain form a redirect to it.

    A refused comment (empty, too long) comes back to htmx as the form itself, with why next to
    the field and the text as typed, to go in place of the form (app.js swaps such 422s).
    """
    paper_id = canonical_id(paper_id)
    try:
        added = add_comment(request.app.state.engine, member, paper_id, body)
    except CommentError as exc:
        if not is_htmx(request):
            raise HTTPException(422, str(exc)) from None
        form = render(
            request,
            "_comment_form.html",
            status_code=422,
            paper_id=paper_id,
            body=body,
            error=str(exc),
            max_length=MAX_COMMENT,
        )
        form.headers.update({"HX-Retarget": "#comment-form", "HX-Reswap": "outerHTML"})
        return form
    if is_htmx(request):
        return render(request, "_comment.html", comment=added)
    return RedirectResponse(f"/papers/{paper_id}#comment-{added.id}", 303)


@router.post("/papers/{paper_id:path}/hide")
def hide_paper(
    request: Request,
    paper_id: str,
    member: MemberDep,
    hidden: Annotated[bool, Form()] = True,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    paper_id = canonical_id(paper_id)
    with refusals():
        set_paper_hidden(request.app.state.engine, member, paper_id, hidden, reason)
    if hidden:  # where the admin sees what is hidden, and can show it again
        return RedirectResponse(f"/admin/hidden?hidden={quote(paper_id)}#papers", 303)
    return RedirectResponse(f"/papers/{paper_id}", 303)


@router.post("/comments/{comment_id}/hide")
def hide_comment(
    request: Request,
    comment_id: CommentId,
    member: MemberDep,
    hidden: Annotated[bool, Form()] = True,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    with refusals():
        engine = request.app.state.engine
        paper_id = set_comment_hidden(engine, member, comment_id, hidden, reason)
    return RedirectResponse(f"/papers/{paper_id}#comment-{comment_id}", 303)


@router.post("/comments/{comment_id}/report")
def report_comment(
    request: Request,
    comment_id: CommentId,
    member: MemberDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """A member tells the admins about a comment; it stays shown until one of them acts."""
    with refusals():
        paper_id = reports.report_comment(request.app.state.engine, member, comment_id, reason)
    return RedirectResponse(f"/papers/{paper_id}?reported={comment_id}#comment-{comment_id}", 303)


def _edit_form(
    request: Request, member: Member, comment_id: int, body: str | None = None, error: str = ""
) -> Response:
    """The edit page: the comment's text, or what was sent back with why it was refused."""
    with refusals():
        comment = comment_to_edit(request.app.state.engine, member, comment_id)
    return render(
        request,
        "comment_edit.html",
        status_code=422 if error else 200,
        comment=comment,
        body=comment.body if body is None else body,
        error=error,
        max_length=MAX_COMMENT,
    )


@router.post("/comments/{comment_id}/edit", response_class=HTMLResponse)
def edit_comment_text(
    request: Request, comment_id: CommentId, member: MemberDep, body: CommentBody
) -> Response:
    """Save the author's edit; a refused one comes back on the form, nothing typed lost."""
    try:
        with refusals():
            edited = edit_comment(request.app.state.engine, member, comment_id, body)
    except CommentError as exc:
        return _edit_form(request, member, comment_id, body, error=str(exc))
    return RedirectResponse(f"/papers/{edited.paper_id}#comment-{edited.id}", 303)


@router.post("/comments/{comment_id}/delete", response_class=HTMLResponse)
def delete_comment_for_good(request: Request, comment_id: CommentId, member: MemberDep) -> Response:
    """Delete by the author or an admin; htmx gets nothing in the comment's place."""
    with refusals():
        paper_id = delete_comment(request.app.state.engine, member, comment_id)
    if is_htmx(request):
        return HTMLResponse("")
    return RedirectResponse(f"/papers/{paper_id}#comments", 303)


submit_router = APIRouter(include_in_schema=False)


@submit_router.get("/comments/{comment_id}/edit", response_class=HTMLResponse)
def edit_comment_page(request: Request, comment_id: CommentId, member: MemberDep) -> Response:
    """The author's form to edit a comment (a page: it works without scripts)."""
    return _edit_form(request, member, comment_id)


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
