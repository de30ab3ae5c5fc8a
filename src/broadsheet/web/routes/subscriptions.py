"""Subscribe (double opt-in), confirm by the mailed link, unsubscribe without signing in."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse

from broadsheet.community import ratelimit
from broadsheet.community.mail_queue import send_later
from broadsheet.digest.confirmation import mail_issued_link
from broadsheet.digest.subscriptions import (
    ConfirmationLink,
    Frequency,
    InvalidEmail,
    Requester,
    Status,
    confirm,
    normalise_email,
    request_subscription,
    subscriber_for_unsubscribe,
    unsubscribe,
)
from broadsheet.digest.tokens import InvalidLink
from broadsheet.web.auth import client_address, current_member
from broadsheet.web.render import render
from broadsheet.web.security import require_csrf

router = APIRouter(include_in_schema=False)

Token = Annotated[str, Query(max_length=1000)]
# An unsubscribe link cut short before its token is an incomplete link: defaulting to "" gives
# it the same page as a bad token, not a list of missing values.
NO_TOKEN = ""


@router.post("/subscribe", response_class=HTMLResponse, dependencies=[Depends(require_csrf)])
def subscribe(
    request: Request,
    email: Annotated[str, Form(max_length=320)],
    frequency: Annotated[Frequency, Form()] = Frequency.daily,
) -> HTMLResponse:
    """Ask for the digest at an address: a confirmation link by mail, within the limits.

    The link is mailed after the answer, so the answer takes as long whether the address is
    new, waiting or subscribed already, and whatever the mail server does. The address is kept
    even when no mail can go out now (mail not configured, or the server refused): the link
    is mailed later.
    """
    engine, settings = request.app.state.engine, request.app.state.settings
    member = current_member(request)
    requester = Requester(client_address(request), member.id if member else None)
    try:
        outcome = request_subscription(engine, settings, email, frequency, requester)
    except InvalidEmail as exc:
        return render(request, "subscribe.html", status_code=422, error=str(exc), email=email)
    except ratelimit.RateLimited as exc:
        response = render(request, "subscribe.html", status_code=429, error=str(exc))
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    mail_link_later(request, outcome.link)
    return render(
        request,
        "subscribe.html",
        email=normalise_email(email),
        sent_recently=outcome.link_sent_recently,
        mail_waiting=outcome.mail_waiting,
        cooldown_minutes=settings.confirmation_cooldown_minutes,
    )


def mail_link_later(request: Request, link: ConfirmationLink | None) -> None:
    """Mail a confirmation link a request issued, once the answer has gone."""
    if link is None:
        return
    app = request.app
    job = partial(mail_issued_link, app.state.engine, app.state.settings, app.state.secret, link)
    send_later(f"confirmation for subscription {link.subscriber.id}", job)


@router.get("/subscribe/confirm", response_class=HTMLResponse)
def confirm_subscription(request: Request, token: Token = NO_TOKEN) -> HTMLResponse:
    app = request.app
    try:
        subscriber = confirm(app.state.engine, app.state.settings, app.state.secret, token)
    except InvalidLink as exc:
        return render(
            request, "subscription.html", status_code=400, error=str(exc), expired=exc.expired
        )
    return render(request, "subscription.html", subscriber=subscriber, confirmed=True)


@router.get("/unsubscribe", response_class=HTMLResponse)
def unsubscribe_page(request: Request, token: Token = NO_TOKEN) -> HTMLResponse:
    """Asks before unsubscribing: mail scanners open links, and a GET must change nothing."""
    try:
        subscriber = subscriber_for_unsubscribe(
            request.app.state.engine, request.app.state.secret, token
        )
    except InvalidLink as exc:
        return render(request, "subscription.html", status_code=400, error=str(exc))
    return render(request, "subscription.html", subscriber=subscriber, token=token, asking=True)


@router.post("/unsubscribe", response_class=HTMLResponse)
def unsubscribe_now(request: Request, token: Token = NO_TOKEN) -> HTMLResponse:
    """The page's button and RFC 8058 one-click POSTs; the signed link is the authority."""
    engine, secret = request.app.state.engine, request.app.state.secret
    try:
        before = subscriber_for_unsubscribe(engine, secret, token)
        subscriber = unsubscribe(engine, secret, token)
    except InvalidLink as exc:
        return render(request, "subscription.html", status_code=400, error=str(exc))
    already = before.status == Status.unsubscribed
    return render(
        request, "subscription.html", subscriber=subscriber, unsubscribed=True, already=already
    )
