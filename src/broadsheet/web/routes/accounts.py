"""Sign up, sign in and sign out (which ends the member's sessions everywhere)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from broadsheet.community import ratelimit
from broadsheet.community.accounts import AccountError, Member, create_member
from broadsheet.community.passwords import HasherBusy
from broadsheet.community.signin import sign_in
from broadsheet.web.auth import client_address, end_session, safe_next, start_session
from broadsheet.web.render import render
from broadsheet.web.security import require_csrf

router = APIRouter(include_in_schema=False)


def _form(request: Request, template: str, next_url: str, status_code: int = 200, **context):
    return render(request, template, status_code=status_code, next=next_url, **context)


@router.get("/signup", response_class=HTMLResponse)
def signup_page(request: Request, next: Annotated[str, Query(max_length=2000)] = "/"):
    return _form(request, "signup.html", safe_next(next))


@router.post("/signup", response_class=HTMLResponse, dependencies=[Depends(require_csrf)])
def signup(
    request: Request,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=4096)],
    next: Annotated[str, Form(max_length=2000)] = "/",
):
    engine = request.app.state.engine

    def attempt() -> Member:
        ratelimit.check(engine, ratelimit.SIGN_UPS, f"ip:{client_address(request)}")
        return create_member(engine, username, password)

    return _start_session_or_explain(request, "signup.html", attempt, username, next, 422)


@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request, next: Annotated[str, Query(max_length=2000)] = "/"):
    return _form(request, "signin.html", safe_next(next))


@router.post("/signin", response_class=HTMLResponse, dependencies=[Depends(require_csrf)])
def signin(
    request: Request,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=4096)],
    next: Annotated[str, Form(max_length=2000)] = "/",
):
    engine = request.app.state.engine

    def attempt() -> Member:
        return sign_in(engine, username, password, client_address(request))

    return _start_session_or_explain(request, "signin.html", attempt, username, next, 401)


def _start_session_or_explain(
    request: Request,
    template: str,
    attempt: Callable[[], Member],
    username: str,
    next_url: str,
    refused_status: int,
) -> Response:
    """Sign in the member ``attempt`` returns and go on, or show the form with the reason."""
    next_url = safe_next(next_url)
    try:
        member = attempt()
    except (AccountError, ratelimit.RateLimited, HasherBusy) as exc:
        return refusal(request, template, exc, refused_status, next=next_url, username=username)
    start_session(request, member)
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
