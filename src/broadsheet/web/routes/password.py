"""A member changes their password: every other session of theirs ends, this one goes on."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from broadsheet.community import ratelimit
from broadsheet.community.accounts import AccountError, change_password
from broadsheet.community.passwords import HasherBusy
from broadsheet.community.signin import sign_in
from broadsheet.web.auth import MemberDep, client_address, start_session
from broadsheet.web.render import render
from broadsheet.web.routes.accounts import refusal
from broadsheet.web.security import require_csrf

router = APIRouter(include_in_schema=False)
TEMPLATE = "password.html"


@router.get("/settings/password", response_class=HTMLResponse)
def password_page(request: Request, member: MemberDep) -> HTMLResponse:
    return render(request, TEMPLATE)


@router.post("/settings/password", dependencies=[Depends(require_csrf)])
def password_change(
    request: Request,
    member: MemberDep,
    current_password: Annotated[str, Form(max_length=4096)],
    new_password: Annotated[str, Form(max_length=4096)],
) -> Response:
    """The current password is checked like a sign-in (and its failures slow down the same)."""
    engine = request.app.state.engine
    try:
        sign_in(engine, member.username, current_password, client_address(request))
    except AccountError:
        wrong = AccountError("current_password", "That is not your current password.")
        return refusal(request, TEMPLATE, wrong, 401)
    except (ratelimit.RateLimited, HasherBusy) as exc:
        return refusal(request, TEMPLATE, exc, 429)
    try:
        changed = change_password(engine, member.username, new_password)
    except (AccountError, HasherBusy) as exc:
        return refusal(request, TEMPLATE, exc, 422)
    start_session(request, changed)
    return RedirectResponse("/settings/password?changed=1", status_code=303)
