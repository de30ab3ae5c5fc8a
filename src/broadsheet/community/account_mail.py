"""An account's own email address, verified by mail, and password reset by mail.

Links are signed (itsdangerous) and expire. A verification link names the account and the
address; it verifies that address only while the account still has it. A reset link also
carries a fingerprint of the password hash it was made for, so it works once: the new
password changes the hash, and every link made before stops working (so does any change of
password in between). Asking for a reset answers the same whether or not the account exists.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import quote

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import Engine, func, select, update

from broadsheet.community import ratelimit
from broadsheet.community.accounts import Member, change_password, get_member
from broadsheet.config import Settings
from broadsheet.db.schema import users
from broadsheet.digest.mailer import Mailer
from broadsheet.digest.subscriptions import normalise_email

VERIFY = "account-email-verify"
RESET = "account-password-reset"
VERIFY_SECONDS = 2 * 24 * 3600
RESET_SECONDS = 3600
RESETS_BY_CLIENT = ratelimit.Limit("password_reset", hits=5, seconds=3600)
RESETS_TO_MEMBER = ratelimit.Limit("password_reset", hits=3, seconds=3600)
VERIFICATIONS_BY_MEMBER = ratelimit.Limit("email_verify", hits=5, seconds=3600)


class InvalidAccountLink(ValueError):
    """The link was altered, is too old, or was used already (the message says which)."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A mail to send: to whom, and the message."""

    address: str
    message: EmailMessage


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _serializer(secret: str, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=purpose)


def _load(secret: str, purpose: str, token: str, max_age: int) -> list:
    try:
        payload = _serializer(secret, purpose).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise InvalidAccountLink("This link has expired: ask for a new one.") from exc
    except (BadSignature, ValueError, TypeError) as exc:
        raise InvalidAccountLink("This link is not valid (it may be incomplete).") from exc
    if not isinstance(payload, list) or len(payload) != 3:
        raise InvalidAccountLink("This link is not valid (it may be incomplete).")
    return payload


def _message(settings: Settings, to: str, subject: str, text: str, link: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"{settings.site_name}: {subject}"
    message["From"] = settings.mail_from
    message["To"] = to
    message["Message-ID"] = make_msgid(domain="broadsheet.local")
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(f"{text}\n\n{link}\n\nIf it was not you, ignore this mail.\n")
    return message


def set_account_email(
    engine: Engine, settings: Settings, secret: str, member: Member, email: str
) -> Outgoing | None:
    """Store the account's address (unverified) and the mail with its verification link;
    an empty ``email`` removes the address (None: nothing to send). InvalidEmail says why an
    address is refused."""
    if not email.strip():
        with engine.begin() as connection:
            connection.execute(
                update(users)
                .where(users.c.id == member.id)
                .values(email=None, email_verified_at=None)
            )
        return None
    address = normalise_email(email)
    with engine.begin() as connection:
        ratelimit.hit(connection, VERIFICATIONS_BY_MEMBER, f"member:{member.id}")
        current = connection.execute(
            select(users.c.email, users.c.email_verified_at).where(users.c.id == member.id)
        ).one()
        if current.email != address or current.email_verified_at is None:
            connection.execute(
                update(users)
                .where(users.c.id == member.id)
                .values(email=address, email_verified_at=None)
            )
    token = _serializer(secret, VERIFY).dumps([member.id, address, 0])
    link = f"{settings.base_url.rstrip('/')}/settings/email/verify?token={quote(token)}"
    text = (
        f"Someone (we hope you) gave this address to the {settings.site_name} account "
        f"“{member.username}”, for password resets. Verify it within 2 days by opening this link:"
    )
    return Outgoing(address, _message(settings, address, "verify your address", text, link))


def verify_account_email(engine: Engine, secret: str, token: str) -> str:
    """Mark the address the link names verified, while the account still has it."""
    member_id, address, _ = _load(secret, VERIFY, token, VERIFY_SECONDS)
    with engine.begin() as connection:
        verified = connection.execute(
            update(users)
            .where(users.c.id == int(member_id), users.c.email == str(address))
            .values(email_verified_at=func.coalesce(users.c.email_verified_at, _now()))
            .returning(users.c.email)
        ).first()
    if verified is None:
        raise InvalidAccountLink("This link is for an address the account no longer has.")
    return verified.email


def _fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:24]


def request_password_reset(
    engine: Engine, settings: Settings, secret: str, who: str, client: str
) -> list[Outgoing]:
    """Reset mails for the accounts ``who`` names (a username, or a verified address): none
    when nothing matches, and the caller answers the same either way."""
    who = who.strip()
    with engine.begin() as connection:
        ratelimit.hit(connection, RESETS_BY_CLIENT, f"client:{client}")
    if not who:
        return []
    with engine.connect() as connection:
        by_name = func.lower(users.c.username) == who.lower()
        by_address = func.lower(users.c.email) == who.lower()
        rows = connection.execute(
            select(users.c.id, users.c.username, users.c.email, users.c.password_hash).where(
                by_name | by_address, users.c.email_verified_at.is_not(None)
            )
        ).all()
    mails = []
    for row in rows:
        try:
            with engine.begin() as connection:
                ratelimit.hit(connection, RESETS_TO_MEMBER, f"member:{row.id}")
        except ratelimit.RateLimited:
            continue  # said the same as any other answer: no hint that the account exists
        token = _serializer(secret, RESET).dumps(
            [row.id, row.email, _fingerprint(row.password_hash)]
        )
        link = f"{settings.base_url.rstrip('/')}/password/reset?token={quote(token)}"
        text = (
            f"Someone (we hope you) asked to reset the password of the {settings.site_name} "
            f"account “{row.username}”. Choose a new one within an hour at this link "
            "(it works once):"
        )
        mails.append(
            Outgoing(row.email, _message(settings, row.email, "reset your password", text, link))
        )
    return mails


def reset_target(engine: Engine, secret: str, token: str) -> Member:
    """The account a reset link is for, while the link is still good."""
    member_id, address, fingerprint = _load(secret, RESET, token, RESET_SECONDS)
    with engine.connect() as connection:
        row = connection.execute(
            select(users.c.password_hash, users.c.email).where(users.c.id == int(member_id))
        ).first()
        member = get_member(connection, int(member_id))
    if row is None or member is None or row.email != address:
        raise InvalidAccountLink("This link is for an account or address that has changed.")
    if _fingerprint(row.password_hash) != fingerprint:
        raise InvalidAccountLink("This link was used already, or the password changed since.")
    return member


def reset_password(engine: Engine, secret: str, token: str, new_password: str) -> Member:
    """Set the new password a reset link allows (other sessions end); AccountError for a
    password that is refused, InvalidAccountLink for a link that no longer works."""
    member = reset_target(engine, secret, token)
    return change_password(engine, member.username, new_password)


def send_all(settings: Settings, mails: list[Outgoing]) -> None:
    """Send now (raises DeliveryError when the server refuses one)."""
    if not mails:
        return
    with Mailer(settings) as mailer:
        for mail in mails:
            mailer.send(mail.message, mail.address)
