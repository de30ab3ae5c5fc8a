"""The mail that asks a new subscriber to confirm the address (double opt-in)."""

from __future__ import annotations

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
)

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


def send_confirmation(settings: Settings, secret: str, confirmation: ConfirmationLink) -> None:
    """Send the confirmation mail now (raises DeliveryError when the server refuses it)."""
    with Mailer(settings) as mailer:
        mailer.send(confirmation_message(settings, secret, confirmation), confirmation.address)


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
            try:
                mailer.send(confirmation_message(settings, secret, link), link.address)
            except DeliveryError as exc:
                failed += 1
                if not exc.permanent:
                    link_not_sent(engine, link)
                    break
                link_mailed(engine, link, now)
                continue
            link_mailed(engine, link, now)
            sent += 1
    return ConfirmationRound(sent, failed)
