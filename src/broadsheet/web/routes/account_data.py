"""What a member keeps of their account: its email address (verified by mail), password
reset by mail, API tokens, the export of everything they own, and deleting the account."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from broadsheet.community import ratelimit
from broadsheet.community.account_mail import (
    InvalidAccountLink,
    request_password_reset,
    reset_password,
    reset_target,
    send_all,
    set_account_email,
    verify_account_email,
)
from broadsheet.community.accounts import AccountError
from broadsheet.community.api_tokens import create_token, revoke_token
from broadsheet.community.library import LibraryError
from broadsheet.community.member_data import delete_member, export_member
from broadsheet.community.passwords import HasherBusy
from broadsheet.community.signin import sign_in
from broadsheet.digest.mailer import DeliveryError
from broadsheet.digest.subscriptions import InvalidEmail
from broadsheet.web.auth import MemberDep, client_address, start_session
from broadsheet.web.refusals import refusals
from broadsheet.web.render import render
from broadsheet.web.routes.accounts import refusal
from broadsheet.web.routes.settings import settings_view
from broadsheet.web.security import require_csrf

actions = APIRouter(include_in_schema=False, dependencies=[Depends(require_csrf)])
pages = APIRouter(include_in_schema=False)
Token = Annotated[str, Query(max_length=2000)]
MAIL_FAILED = "The mail server could not take the mail just now: try again in a few minutes."


@actions.post("/settings/email")
def account_email(
    request: Request, member: MemberDep, email: Annotated[str, Form(max_length=400)] = ""
) -> Response:
    state = request.app.state
    try:
        outgoing = set_account_email(state.engine, state.settings, state.secret, member, email)
    except InvalidEmail as exc:
        return settings_view(request, member, 422, account_error=str(exc))
    except ratelimit.RateLimited as exc:
        return settings_view(request, member, 429, account_error=str(exc))
    if outgoing is None:
        return RedirectResponse("/settings?email=removed#account", 303)
    try:
        send_all(state.settings, [outgoing])
    except DeliveryError:
        return settings_view(request, member, 503, account_error=MAIL_FAILED)
    return RedirectResponse("/settings?email=sent#account", 303)


@pages.get("/settings/email/verify", response_class=HTMLResponse)
def verify_email(request: Request, token: Token = "") -> Response:
    try:
        address = verify_account_email(request.app.state.engine, request.app.state.secret, token)
    except InvalidAccountLink as exc:
        raise HTTPException(400, str(exc)) from None
    return render(request, "account_message.html", heading="Address verified", text=(
        f"{address} is verified: a password reset can be mailed there."
    ))  # fmt: skip


@actions.post("/settings/tokens")
def new_token(
    request: Request, member: MemberDep, name: Annotated[str, Form(max_length=400)]
) -> Response:
    try:
        _, token = create_token(request.app.state.engine, member, name)
    except LibraryError as exc:
        return settings_view(request, member, 422, token_error=str(exc))
    return settings_view(request, member, 200, new_token=token)


@actions.post("/settings/tokens/{token_id}/revoke")
def revoke(
    request: Request, token_id: Annotated[int, Path(ge=1, le=2**31 - 1)], member: MemberDep
) -> Response:
    with refusals():
        revoke_token(request.app.state.engine, member, token_id)
    return RedirectResponse("/settings#tokens", 303)


@pages.get("/settings/export")
def export(request: Request, member: MemberDep) -> Response:
    """Everything the member owns as one JSON file."""
    with request.app.state.engine.connect() as connection:
        data = export_member(connection, member.id)
    return Response(
        json.dumps(data, ensure_ascii=False, indent=2),
        media_type="application/json; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="broadsheet-{member.username}.json"'
        },
    )


@actions.post("/settings/delete")
def delete_account(
    request: Request, member: MemberDep, password: Annotated[str, Form(max_length=4096)]
) -> Response:
    """Delete the account once its password is given again (checked like a sign-in)."""
    engine = request.app.state.engine
    try:
        sign_in(engine, member.username, password, client_address(request))
    except AccountError:
        return settings_view(request, member, 401, delete_error="That is not your password.")
    except (ratelimit.RateLimited, HasherBusy) as exc:
        return settings_view(request, member, 429, delete_error=str(exc))
    delete_member(engine, member)
    request.session.clear()  # the account is gone: so is every session of it
    request.state.member = None
    return render(request, "account_message.html", member=None, heading="Account deleted", text=(
        f"The account “{member.username}” and everything in it are gone, and you are signed out."
    ))  # fmt: skip


@pages.get("/password/forgot", response_class=HTMLResponse)
def forgot_page(request: Request) -> HTMLResponse:
    return render(request, "password_forgot.html")


@actions.post("/password/forgot", response_class=HTMLResponse)
def forgot(request: Request, who: Annotated[str, Form(max_length=400)] = "") -> Response:
    state = request.app.state
    try:
        mails = request_password_reset(
            state.engine, state.settings, state.secret, who, client_address(request)
        )
        send_all(state.settings, mails)
    except ratelimit.RateLimited as exc:
        return refusal(request, "password_forgot.html", exc, 429)
    except DeliveryError:
        return render(request, "password_forgot.html", status_code=503, error=MAIL_FAILED)
    return render(request, "password_forgot.html", sent=True)


@pages.get("/password/reset", response_class=HTMLResponse)
def reset_page(request: Request, token: Token = "") -> Response:
    try:
        member = reset_target(request.app.state.engine, request.app.state.secret, token)
    except InvalidAccountLink as exc:
        raise HTTPException(400, str(exc)) from None
    return render(request, "password_reset.html", token=token, username=member.username)


@actions.post("/password/reset", response_class=HTMLResponse)
def reset(
    request: Request,
    token: Annotated[str, Form(max_length=2000)],
    new_password: Annotated[str, Form(max_length=4096)],
) -> Response:
    engine = request.app.state.engine
    try:
        changed = reset_password(engine, request.app.state.secret, token, new_password)
    except InvalidAccountLink as exc:
        raise HTTPException(400, str(exc)) from None
    except (AccountError, HasherBusy) as exc:
        member = reset_target(engine, request.app.state.secret, token)
        return refusal(
            request, "password_reset.html", exc, 422, token=token, username=member.username
        )
    start_session(request, changed)
    return RedirectResponse("/settings/password?changed=1", 303)
