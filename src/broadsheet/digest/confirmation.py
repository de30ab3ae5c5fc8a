"""The mail that asks a new subscriber to confirm the address (double opt-in)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid
from html import escape
from urllib.parse import quote

from sqlalchemy import Engine

from broadsheet.config import Settings
from broadsheet.digest import tokens
from broadsheet.digest.mailer import DeliveryError, Mailer
from broadsheet.digest.subscriptions import (
    ConfirmationLink,
    Subscriber,
    claim_owed_links,
    link_mailed,
    link_not_sent,
    link_subject,
    renew_claim,
)

log = logging.getLogger(__name__)

# what an admin sets so the site can send mail (environment variables, or lines in .env)
MAIL_SETTINGS = (
    "BROADSHEET_SMTP_HOST",
    "BROADSHEET_SMTP_PORT",
    "BROADSHEET_SMTP_SECURITY",
    "BROADSHEET_SMTP_USERNAME",
    "BROADSHEET_SMTP_PASSWORD",
    "BROADSHEET_MAIL_FROM",
)


def confirm_url(settings: Settings, secret: str, link: ConfirmationLink) -> str:
    token = tokens.make_confirmation_token(secret, link.subject)
    return f"{settings.base_url.rstrip('/')}/subscribe/confirm?token={quote(token)}"


def unsubscribe_url(settings: Settings, secret: str, subscriber: Subscriber) -> str:
    token = tokens.make_token(secret, tokens.UNSUBSCRIBE, link_subject(subscriber))
    return f"{settings.base_url.rstrip('/')}/unsubscribe?token={quote(token)}"


def confirmation_message(
    settings: Settings, secret: str, confirmation: ConfirmationLink
) -> EmailMessage:
    """Plain-text and HTML parts with the confirmation link; nothing else is sent before it."""
    link = confirm_url(settings, secret, confirmation)
    days = settings.confirm_link_days
    message = EmailMessage()
    message["Subject"] = f"Confirm your {settings.site_name} digest subscription"
    message["From"] = settings.mail_from
    message["To"] = confirmation.address
    message["Message-ID"] = make_msgid(domain="broadsheet.local")
    message["Auto-Submitted"] = "auto-generated"
    asked = _what_was_asked(settings, confirmation)
    message.set_content(
        f"{asked}\n\n"
        f"Confirm within {days} days by opening this link:\n{link}\n\n"
        "If it was not you, ignore this mail: nothing more will be sent.\n"
    )
    message.add_alternative(
        f"""<!doctype html><html><body style="font-family:system-ui,sans-serif;color:#1f2328">
<p>{escape(asked)}</p>
<p><a href="{escape(link)}" style="display:inline-block;padding:8px 16px;background:#b45309;
color:#fff;border-radius:6px;text-decoration:none">Confirm my subscription</a></p>
<p style="color:#6b7280;font-size:13px">The link works for {days} days. If it was not you,
ignore this mail: nothing more will be sent.</p>
</body></html>""",
        subtype="html",
    )
    return message


def _what_was_asked(settings: Settings, confirmation: ConfirmationLink) -> str:
    subscriber = confirmation.subscriber
    digest = f"{subscriber.frequency} {settings.site_name} digest of trending papers"
    if confirmation.address != subscriber.email:  # a member moving their subscription here
        return (
            f"Someone (we hope you) signed in to {settings.site_name} asked to have their "
            f"{digest} sent to this address, managed from their account from now on."
        )
    return f"Someone (we hope you) asked for the {digest} at this address."


def mail_issued_link(
    engine: Engine, settings: Settings, secret: str, link: ConfirmationLink
) -> bool:
    """Mail a link a request issued (after its answer: ``mail_queue``); True when it went.

    A link the subscription no longer waits for is not mailed. One the server refuses for now
    is owed again, for the next round of ``send_unmailed_confirmations``; the failure is logged
    by subscription id, never with the address or the link.
    """
    held = renew_claim(engine, link)
    if held is None:
        return False
    with Mailer(settings) as mailer:
        failure = _mail_one(mailer, engine, settings, secret, held)
    if failure is not None:
        log.warning("confirmation for subscription %d not sent: %s", link.subscriber.id, failure)
    return failure is None


def _mail_one(
    mailer: Mailer,
    engine: Engine,
    settings: Settings,
    secret: str,
    link: ConfirmationLink,
    now: datetime | None = None,
) -> DeliveryError | None:
    """Mail one claimed link and record what came of it; the failure, if any.

    Refused for now: the link is owed again. Refused for good: it is recorded as mailed, so no
    round tries it again (asking again from the site sends a new one).
    """
    try:
        mailer.send(confirmation_message(settings, secret, link), link.address)
    except DeliveryError as exc:
        if exc.permanent:
            link_mailed(engine, link, now)
        else:
            link_not_sent(engine, link)
        return exc
    link_mailed(engine, link, now)
    return None


@dataclass(frozen=True, slots=True)
class ConfirmationRound:
    """What one round of late confirmation mails did."""

    sent: int = 0
    failed: int = 0


def send_unmailed_confirmations(
    engine: Engine, settings: Settings, secret: str, now: datetime | None = None
) -> ConfirmationRound:
    """Mail the links that addresses kept while mail was off (or whose mail failed) still wait
    for: each claimed, mailed, then recorded as mailed once the server has accepted it, so a
    sender killed mid-round leaves the rest owed (and the one in hand, once its claim lapses).

    A mail refused for now ends the round (the server is likely down) and is tried again next
    round with the rest; one refused for good is recorded as mailed, so no round tries it
    again (asking again from the site sends a new one). A sender killed after the server
    accepted a mail but before recording it sends that mail once more, with the same link: SMTP
    has no way to accept a mail and record it together.
    """
    sent = failed = 0
    with Mailer(settings) as mailer:
        for link in claim_owed_links(engine, settings):
            failure = _mail_one(mailer, engine, settings, secret, link, now)
            if failure is None:
                sent += 1
                continue
            failed += 1
            if not failure.permanent:
                break
    return ConfirmationRound(sent, failed)
