"""A member's settings: their digest subscription; for admins, the digests that failed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from broadsheet.community.accounts import Member
from broadsheet.community.api_tokens import member_tokens
from broadsheet.community.ratelimit import RateLimited
from broadsheet.db.schema import users
from broadsheet.digest.confirmation import MAIL_SETTINGS
from broadsheet.digest.outbox import delivery_failures
from broadsheet.digest.subscriptions import (
    AddressTaken,
    Frequency,
    InvalidEmail,
    Requester,
    mail_is_configured,
    member_subscription,
    save_member_subscription,
    stop_member_subscription,
)
from broadsheet.web.auth import MemberDep, client_address
from broadsheet.web.render import render
from broadsheet.web.routes.subscriptions import mail_link_later
from broadsheet.web.security import require_csrf

router = APIRouter(include_in_schema=False)


NEW_TOKEN = "new_token"  # a token just made, shown once by the page after the redirect


def settings_view(
    request: Request, member: Member, status_code: int = 200, **context
) -> HTMLResponse:
    """The settings page (``context``: what a refused or finished form has to say)."""
    new_token = request.session.pop(NEW_TOKEN, None)
    if isinstance(new_token, str):
        context.setdefault("new_token", new_token)
    engine = request.app.state.engine
    failures = delivery_failures(engine) if member.is_admin else []
    with engine.connect() as connection:
        account = connection.execute(
            select(users.c.email, users.c.email_verified_at).where(users.c.id == member.id)
        ).first()
        tokens = member_tokens(connection, member.id)
    subscription = member_subscription(engine, member.id)
    settings = request.app.state.settings
    mail_ready = mail_is_configured(settings)
    return render(
        request, "settings.html", status_code, subscription=subscription, failures=failures,
        cooldown_minutes=settings.confirmation_cooldown_minutes, mail_ready=mail_ready,
        mail_settings=MAIL_SETTINGS if member.is_admin and not mail_ready else (),
        account=account, tokens=tokens, **context,
    )  # fmt: skip


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, member: MemberDep) -> HTMLResponse:
    return settings_view(request, member)


@router.post("/settings/digest", dependencies=[Depends(require_csrf)])
def save_digest(
    request: Request,
    member: MemberDep,
    email: Annotated[str, Form(max_length=320)],
    frequency: Annotated[Frequency, Form()] = Frequency.daily,
    topics: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    """Save the member's own subscription; a new address gets a confirmation link by mail,
    after the answer (later, when mail is not configured or the server refuses it now: the
    page says so)."""
    app = request.app
    engine, settings = app.state.engine, app.state.settings
    requester = Requester(client_address(request), member.id)
    try:
        outcome = save_member_subscription(
            engine, settings, member.id, email, frequency, topics.splitlines(), requester
        )
    except (InvalidEmail, AddressTaken) as exc:
        return settings_view(request, member, 422, error=str(exc))
    except RateLimited as exc:
        response = settings_view(request, member, 429, error=str(exc))
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    mail_link_later(request, outcome.link)
    wait = "&wait=1" if outcome.link_sent_recently else ""
    return RedirectResponse(f"/settings?saved=1{wait}", status_code=303)


@router.post("/settings/digest/stop", dependencies=[Depends(require_csrf)])
def stop_digest(request: Request, member: MemberDep) -> Response:
    stop_member_subscription(request.app.state.engine, member.id)
    return RedirectResponse("/settings", status_code=303)
