"""A member's settings: their digest subscription; for admins, the digests that failed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from broadsheet.community.accounts import Member
from broadsheet.digest.confirmation import send_confirmation
from broadsheet.digest.mailer import DeliveryError
from broadsheet.digest.outbox import delivery_failures
from broadsheet.digest.subscriptions import (
    Frequency,
    InvalidEmail,
    Status,
    member_subscription,
    save_member_subscription,
    stop_member_subscription,
)
from broadsheet.web.auth import require_member
from broadsheet.web.render import render
from broadsheet.web.security import require_csrf

router = APIRouter(include_in_schema=False)
MemberDep = Annotated[Member, Depends(require_member)]


def _page(request: Request, member: Member, status_code: int = 200, **context) -> HTMLResponse:
    engine = request.app.state.engine
    failures = delivery_failures(engine) if member.is_admin else []
    subscription = member_subscription(engine, member.id)
    return render(
        request, "settings.html", status_code, subscription=subscription, failures=failures,
        **context,
    )  # fmt: skip


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, member: MemberDep) -> HTMLResponse:
    return _page(request, member)


@router.post("/settings/digest", dependencies=[Depends(require_csrf)])
def save_digest(
    request: Request,
    member: MemberDep,
    email: Annotated[str, Form(max_length=320)],
    frequency: Annotated[Frequency, Form()] = Frequency.daily,
    topics: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    app = request.app
    try:
        subscriber = save_member_subscription(
            app.state.engine, member.id, email, frequency, topics.splitlines()
        )
        if subscriber.status != Status.confirmed:
            send_confirmation(app.state.settings, app.state.secret, subscriber)
    except InvalidEmail as exc:
        return _page(request, member, 422, error=str(exc))
    except DeliveryError:
        message = "Saved, but the confirmation mail could not be sent; save again later."
        return _page(request, member, 503, error=message)
    return RedirectResponse("/settings?saved=1", status_code=303)


@router.post("/settings/digest/stop", dependencies=[Depends(require_csrf)])
def stop_digest(request: Request, member: MemberDep) -> Response:
    stop_member_subscription(request.app.state.engine, member.id)
    return RedirectResponse("/settings", status_code=303)
