"""Subscribe (double opt-in), confirm by the mailed link, unsubscribe without signing in."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse

from broadsheet.community import ratelimit
from broadsheet.digest.confirmation import send_confirmation
from broadsheet.digest.mailer import DeliveryError
from broadsheet.digest.subscriptions import (
    Frequency,
    InvalidEmail,
    Status,
    add_subscriber,
    confirm,
    normalise_email,
    subscriber_for_unsubscribe,
    unsubscribe,
)
from broadsheet.digest.tokens import InvalidLink
from broadsheet.web.auth import client_address
from broadsheet.web.render import render
from broadsheet.web.security import require_csrf

router = APIRouter(include_in_schema=False)

CONFIRMATION_MAILS = ratelimit.Limit("confirmation_mails", hits=3, seconds=3600)
Token = Annotated[str, Query(max_length=1000)]


@router.post("/subscribe", response_class=HTMLResponse, dependencies=[Depends(require_csrf)])
def subscribe(
    request: Request,
    email: Annotated[str, Form(max_length=320)],
    frequency: Annotated[Frequency, Form()] = Frequency.daily,
) -> HTMLResponse:
    engine, settings = request.app.state.engine, request.app.state.settings
    try:
        address = normalise_email(email)
        # at most a few mails an hour to one address, whoever asks: no mail bombing
        ratelimit.check(engine, CONFIRMATION_MAILS, f"email:{address.lower()}")
        ratelimit.check(engine, ratelimit.SIGN_UPS, f"subscribe-ip:{client_address(request)}")
        subscriber = add_subscriber(engine, address, frequency)
        if subscriber.status != Status.confirmed:
            send_confirmation(settings, request.app.state.secret, subscriber)
    except InvalidEmail as exc:
        return render(request, "subscribe.html", status_code=422, error=str(exc), email=email)
    except ratelimit.RateLimited as exc:
        return render(request, "subscribe.html", status_code=429, error=str(exc), email=email)
    except DeliveryError:
        message = "The confirmation mail could not be sent just now; please try again later."
        return render(request, "subscribe.html", status_code=503, error=message, email=email)
    return render(request, "subscribe.html", email=address)


@router.get("/subscribe/confirm", response_class=HTMLResponse)
def confirm_subscription(request: Request, token: Token) -> HTMLResponse:
    app = request.app
    try:
        subscriber = confirm(app.state.engine, app.state.settings, app.state.secret, token)
    except InvalidLink as exc:
        return render(
            request, "subscription.html", status_code=400, error=str(exc), expired=exc.expired
        )
    return render(request, "subscription.html", subscriber=subscriber, confirmed=True)


@router.get("/unsubscribe", response_class=HTMLResponse)
def unsubscribe_page(request: Request, token: Token) -> HTMLResponse:
    """Asks before unsubscribing: mail scanners open links, and a GET must change nothing."""
    try:
        subscriber = subscriber_for_unsubscribe(
            request.app.state.engine, request.app.state.secret, token
        )
    except InvalidLink as exc:
        return render(request, "subscription.html", status_code=400, error=str(exc))
    return render(request, "subscription.html", subscriber=subscriber, token=token, asking=True)


@router.post("/unsubscribe", response_class=HTMLResponse)
def unsubscribe_now(request: Request, token: Token) -> HTMLResponse:
    """The page's button and RFC 8058 one-click POSTs; the signed link is the authority."""
    try:
        subscriber = unsubscribe(request.app.state.engine, request.app.state.secret, token)
    except InvalidLink as exc:
        return render(request, "subscription.html", status_code=400, error=str(exc))
    return render(request, "subscription.html", subscriber=subscriber, unsubscribed=True)
