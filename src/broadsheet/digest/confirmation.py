"""The mail that asks a new subscriber to confirm the address (double opt-in)."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid
from html import escape
from urllib.parse import quote

from broadsheet.config import Settings
from broadsheet.digest import tokens
from broadsheet.digest.mailer import Mailer
from broadsheet.digest.subscriptions import Subscriber, link_subject


def confirm_url(settings: Settings, secret: str, subscriber: Subscriber) -> str:
    token = tokens.make_token(secret, tokens.CONFIRM, link_subject(subscriber))
    return f"{settings.base_url.rstrip('/')}/subscribe/confirm?token={quote(token)}"


def unsubscribe_url(settings: Settings, secret: str, subscriber: Subscriber) -> str:
    token = tokens.make_token(secret, tokens.UNSUBSCRIBE, link_subject(subscriber))
    return f"{settings.base_url.rstrip('/')}/unsubscribe?token={quote(token)}"


def confirmation_message(settings: Settings, secret: str, subscriber: Subscriber) -> EmailMessage:
    """Plain-text and HTML parts with the confirmation link; nothing else is sent before it."""
    link = confirm_url(settings, secret, subscriber)
    days = settings.confirm_link_days
    message = EmailMessage()
    message["Subject"] = f"Confirm your {settings.site_name} digest subscription"
    message["From"] = settings.mail_from
    message["To"] = subscriber.email
    message["Message-ID"] = make_msgid(domain="broadsheet.local")
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        f"Someone (we hope you) asked for the {subscriber.frequency} {settings.site_name} "
        f"digest of trending papers at this address.\n\n"
        f"Confirm within {days} days by opening this link:\n{link}\n\n"
        "If it was not you, ignore this mail: nothing more will be sent.\n"
    )
    message.add_alternative(
        f"""<!doctype html><html><body style="font-family:system-ui,sans-serif;color:#1f2328">
<p>Someone (we hope you) asked for the {escape(subscriber.frequency)}
{escape(settings.site_name)} digest of trending papers at this address.</p>
<p><a href="{escape(link)}" style="display:inline-block;padding:8px 16px;background:#b45309;
color:#fff;border-radius:6px;text-decoration:none">Confirm my subscription</a></p>
<p style="color:#6b7280;font-size:13px">The link works for {days} days. If it was not you,
ignore this mail: nothing more will be sent.</p>
</body></html>""",
        subtype="html",
    )
    return message


def send_confirmation(settings: Settings, secret: str, subscriber: Subscriber) -> None:
    """Send the confirmation mail now (raises DeliveryError when the server refuses it)."""
    with Mailer(settings) as mailer:
        mailer.send(confirmation_message(settings, secret, subscriber))
