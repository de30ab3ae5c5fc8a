"""Sign up, sign in and sign out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from broadsheet.community import ratelimit
from broadsheet.community.accounts import AccountError, authenticate, create_member
from broadsheet.web.auth import end_session, safe_next, start_session
from broadsheet.web.render import render
from broadsheet.web.security import require_csrf

router = APIRouter(include_in_schema=False)


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


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
    next_url = safe_next(next)
    try:
        ratelimit.check(engine, ratelimit.SIGN_UPS, f"ip:{_client_address(request)}")
        member = create_member(engine, username, password)
    except (AccountError, ratelimit.RateLimited) as exc:
        status = 429 if isinstance(exc, ratelimit.RateLimited) else 422
        return _form(request, "signup.html", next_url, status, error=str(exc), username=username)
    start_session(request, member)
    return RedirectResponse(next_url, status_code=303)


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
    next_url = safe_next(next)
    try:
        ratelimit.check(
            engine,
            ratelimit.SIGN_INS,
            f"ip:{_client_address(request)}",
            f"username:{username.strip().lower()}",
        )
        member = authenticate(engine, username, password)
    except (AccountError, ratelimit.RateLimited) as exc:
        status = 429 if isinstance(exc, ratelimit.RateLimited) else 401
        return _form(request, "signin.html", next_url, status, error=str(exc), username=username)
    start_session(request, member)
    return RedirectResponse(next_url, status_code=303)


@router.post("/signout", dependencies=[Depends(require_csrf)])
def signout(request: Request):
    end_session(request)
    return RedirectResponse("/", status_code=303)
