"""What a member keeps of their account: its email address (verified by mail), password
reset by mail, API tokens, the export of everything they own, and deleting the account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from broadsheet.community import ratelimit
from broadsheet.community.account_mail import (
    InvalidAccountLink,
    account_email_verified,
    limit_reset_requests,
    reset_password,
    reset_target,
    send_password_reset,
    send_verification,
    set_account_email,
    verify_account_email,
)
from broadsheet.community.accounts import AccountError, Member, end_sessions
from broadsheet.community.api_tokens import create_token, revoke_token
from broadsheet.community.library import LibraryError
from broadsheet.community.mail_queue import send_later
from broadsheet.community.member_data import delete_member, export_member
from broadsheet.community.passwords import HasherBusy
from broadsheet.community.signin import sign_in
from broadsheet.digest.subscriptions import InvalidEmail
from broadsheet.web.auth import MemberDep, client_address, start_session
from broadsheet.web.downloads import attachment
from broadsheet.web.refusals import refusals
from broadsheet.web.render import render
from broadsheet.web.routes.accounts import refusal
from broadsheet.web.routes.settings import NEW_TOKEN, settings_view
from broadsheet.web.security import require_csrf

actions = APIRouter(include_in_schema=False, dependencies=[Depends(require_csrf)])
pages = APIRouter(include_in_schema=False)
Token = Annotated[str, Query(max_length=2000)]
# pages whose address holds a link's token send no Referer: the token stays out of other
# servers' logs (and of the site's own, see web/access_log.py)
NO_REFERRER = {"Referrer-Policy": "no-referrer"}


@actions.post("/settings/email")
def account_email(
    request: Request, member: MemberDep, email: Annotated[str, Form(max_length=400)] = ""
) -> Response:
    """Store the address; its link is mailed after the answer, which is the same whether the
    mail goes, the address is another account's, or a limit holds it back."""
    state = request.app.state
    try:
        address = set_account_email(state.engine, member, email)
    except InvalidEmail as exc:
        return settings_view(request, member, 422, account_error=str(exc))
    except ratelimit.RateLimited as exc:
        return settings_view(request, member, 429, account_error=str(exc))
    if address is None:
        return RedirectResponse("/settings?email=removed#account", 303)
    if account_email_verified(state.engine, member.id):  # the digest's confirmed address
        return RedirectResponse("/settings?email=verified#account", 303)
    client = client_address(request)
    send_later("address verification", lambda: send_verification(
        state.engine, state.settings, state.secret, member.id, address, client
    ))  # fmt: skip
    return RedirectResponse("/settings?email=sent#account", 303)


@pages.get("/settings/email/verify", response_class=HTMLResponse)
def verify_email(request: Request, token: Token = "") -> Response:
    try:
        address = verify_account_email(request.app.state.engine, request.app.state.secret, token)
    except InvalidAccountLink as exc:
        raise HTTPException(400, str(exc), headers=NO_REFERRER) from None
    page = render(request, "account_message.html", heading="Address verified", text=(
        f"{address} is verified: a password reset can be mailed there."
    ))  # fmt: skip
    page.headers.update(NO_REFERRER)
    return page


def _password_refused(
    request: Request, member: Member, password: str, error: str
) -> Response | None:
    """The settings page with why, unless ``password`` is the member's (checked like a
    sign-in, whose failures slow down the same); ``error`` names the form's error slot."""
    try:
        sign_in(request.app.state.engine, member.username, password, client_address(request))
    except AccountError:
        return settings_view(request, member, 401, **{error: "That is not your password."})
    except (ratelimit.RateLimited, HasherBusy) as exc:
        return settings_view(request, member, 429, **{error: str(exc)})
    return None


@actions.post("/settings/tokens")
def new_token(
    request: Request,
    member: MemberDep,
    name: Annotated[str, Form(max_length=400)],
    password: Annotated[str, Form(max_length=4096)] = "",
) -> Response:
    """A token acts as the member: it is made only with the password typed again. The token
    is shown once, on the page this redirects to (a reload neither shows it again nor makes
    another)."""
    engine = request.app.state.engine
    if refused := _password_refused(request, member, password, "token_error"):
        return refused
    try:
        _, token = create_token(engine, member, name)
    except LibraryError as exc:
        return settings_view(request, member, 422, token_error=str(exc))
    request.session[NEW_TOKEN] = token
    return RedirectResponse("/settings?token=new#tokens", 303)


@actions.post("/settings/sign-out-everywhere")
def sign_out_everywhere(
    request: Request, member: MemberDep, password: Annotated[str, Form(max_length=4096)] = ""
) -> Response:
    """End every session of the member, this one included, and revoke every API token."""
    engine = request.app.state.engine
    if refused := _password_refused(request, member, password, "everywhere_error"):
        return refused
    end_sessions(engine, member.username, revoke_tokens=True)
    request.session.clear()
    request.state.member = None
    return render(request, "account_message.html", member=None, heading="Signed out everywhere",
                  text="Every session of yours has ended, this one included, and every API "
                  "token is revoked. Sign in again to go on.")  # fmt: skip


@actions.post("/settings/tokens/{token_id}/revoke")
def revoke(
    request: Request, token_id: Annotated[int, Path(ge=1, le=2**31 - 1)], member: MemberDep
) -> Response:
    with refusals():
        revoke_token(request.app.state.engine, member, token_id)
    return RedirectResponse("/settings#tokens", 303)


@pages.get("/settings/export")
def export(request: Request, member: MemberDep) -> Response:
    """Everything the member owns as one JSON file, written as it is read."""
    return StreamingResponse(
        export_member(request.app.state.engine, member.id),
        media_type="application/json; charset=utf-8",
        headers={"Content-Disposition": attachment(f"broadsheet-{member.username}", "json")},
    )


@actions.post("/settings/delete")
def delete_account(
    request: Request, member: MemberDep, password: Annotated[str, Form(max_length=4096)]
) -> Response:
    """Delete the account once its password is given again (checked like a sign-in)."""
    engine = request.app.state.engine
    if refused := _password_refused(request, member, password, "delete_error"):
        return refused
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
    """One answer for every ``who``: finding the account, making its link and mailing it
    happen after the answer, the same work whether or not the account exists."""
    state = request.app.state
    try:
        limit_reset_requests(state.engine, client_address(request))
    except ratelimit.RateLimited as exc:
        return refusal(request, "password_forgot.html", exc, 429)
    send_later("password reset", lambda: send_password_reset(
        state.engine, state.settings, state.secret, who
    ))  # fmt: skip
    return render(request, "password_forgot.html", sent=True)


@pages.get("/password/reset", response_class=HTMLResponse)
def reset_page(request: Request, token: Token = "") -> Response:
    try:
        member = reset_target(request.app.state.engine, request.app.state.secret, token)
    except InvalidAccountLink as exc:
        raise HTTPException(400, str(exc), headers=NO_REFERRER) from None
    page = render(request, "password_reset.html", token=token, username=member.username)
    page.headers.update(NO_REFERRER)
    return page


@actions.post("/password/reset", response_class=HTMLResponse)
def reset(
    request: Request,
    token: Annotated[str, Form(max_length=2000)],
    new_password: Annotated[str, Form(max_length=4096)],
) -> Response:
    """Use the link once: of several uses at once one sets the password, the others are told
    the link was used. A busy hasher answers 503 (try again), as sign-in does."""
    engine, secret = request.app.state.engine, request.app.state.secret
    try:
        member = reset_target(engine, secret, token)
        changed = reset_password(engine, secret, token, new_password)
    except InvalidAccountLink as exc:
        raise HTTPException(400, str(exc)) from None
    except AccountError as exc:
        return refusal(
            request, "password_reset.html", exc, 422, token=token, username=member.username
        )
    start_session(request, changed)
    return RedirectResponse("/settings?password=reset", 303)
