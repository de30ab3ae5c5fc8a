"""Sign up, sign in and sign out (which ends the member's sessions everywhere)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from broadsheet.community import ratelimit
from broadsheet.community.accounts import AccountError, Member, create_member
from broadsheet.community.passwords import HasherBusy
from broadsheet.community.signin import sign_in
from broadsheet.community.votes import NoSuchPaper, set_vote
from broadsheet.papers.ids import canonical_id
from broadsheet.web.auth import client_address, end_session, safe_next, start_session, voted_paper
from broadsheet.web.render import render
from broadsheet.web.security import require_csrf

router = APIRouter(include_in_schema=False)


NextQuery = Annotated[str, Query(max_length=2000)]
ThenQuery = Annotated[str, Query(max_length=2000)]
NextField = Annotated[str, Form(max_length=2000)]
ThenField = Annotated[str, Form(max_length=2000)]


def _form(
    request: Request, template: str, next_url: str, then: str, status_code: int = 200, **context
):
    paper = voted_paper(then)
    return render(
        request,
        template,
        status_code=status_code,
        next=next_url,
        then=then if paper else "",
        vote_paper=paper,
        **context,
    )


def _cast_vote_after_sign_in(request: Request, member: Member, then: str) -> None:
    """The upvote the visitor clicked before signing in: cast (never withdrawn), once.

    It runs in the sign-in POST, behind its CSRF check; a paper that is gone or a spent
    limit simply leaves the vote uncast.
    """
    paper_id = voted_paper(then)
    if paper_id is None:
        return
    with suppress(NoSuchPaper, ratelimit.RateLimited):
        set_vote(request.app.state.engine, member, canonical_id(paper_id), voted=True)


def _signups_closed(request: Request) -> HTMLResponse | None:
    """The page saying sign-ups are closed (an admin closed them), or None while open."""
    state = request.app.state
    if state.site_settings.get(state.engine).signups_open:
        return None
    return render(request, "signup.html", status_code=403, closed=True)


@router.get("/signup", response_class=HTMLResponse)
def signup_page(request: Request, next: NextQuery = "/", then: ThenQuery = ""):
    return _signups_closed(request) or _form(request, "signup.html", safe_next(next), then)


@router.post("/signup", response_class=HTMLResponse, dependencies=[Depends(require_csrf)])
def signup(
    request: Request,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=4096)],
    next: NextField = "/",
    then: ThenField = "",
):
    engine = request.app.state.engine
    if closed := _signups_closed(request):
        return closed

    def attempt() -> Member:
        ratelimit.check(engine, ratelimit.SIGN_UPS, f"ip:{client_address(request)}")
        return create_member(engine, username, password)

    return _start_session_or_explain(request, "signup.html", attempt, username, next, then, 422)


@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request, next: NextQuery = "/", then: ThenQuery = ""):
    return _form(request, "signin.html", safe_next(next), then)


@router.post("/signin", response_class=HTMLResponse, dependencies=[Depends(require_csrf)])
def signin(
    request: Request,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=4096)],
    next: NextField = "/",
    then: ThenField = "",
):
    engine = request.app.state.engine

    def attempt() -> Member:
        return sign_in(engine, username, password, client_address(request))

    return _start_session_or_explain(request, "signin.html", attempt, username, next, then, 401)


def _start_session_or_explain(
    request: Request,
    template: str,
    attempt: Callable[[], Member],
    username: str,
    next_url: str,
    then: str,
    refused_status: int,
) -> Response:
    """Sign in the member ``attempt`` returns, do what they asked for, and go on; or show the
    form with the reason (keeping where to go and what to do)."""
    next_url = safe_next(next_url)
    paper = voted_paper(then)
    then = then if paper else ""
    try:
        member = attempt()
    except (AccountError, ratelimit.RateLimited, HasherBusy) as exc:
        return refusal(
            request,
            template,
            exc,
            refused_status,
            next=next_url,
            then=then,
            vote_paper=paper,
            username=username,
        )
    start_session(request, member)
    _cast_vote_after_sign_in(request, member, then)
    return RedirectResponse(next_url, status_code=303)


def refusal(
    request: Request, template: str, exc: Exception, wrong_status: int, **context
) -> Response:
    """The form again, saying why it was refused.

    A wrong entry answers ``wrong_status``; "wait" answers 429 (a limit) or 503 (busy hashing)
    with Retry-After saying for how long.
    """
    status_code = {ratelimit.RateLimited: 429, HasherBusy: 503}.get(type(exc), wrong_status)
    response = render(request, template, status_code=status_code, error=str(exc), **context)
    if isinstance(exc, ratelimit.RateLimited | HasherBusy):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


@router.post("/signout", dependencies=[Depends(require_csrf)])
def signout(request: Request):
    end_session(request)
    return RedirectResponse("/", status_code=303)
