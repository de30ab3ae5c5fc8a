"""An account's own email address, verified by mail, and password reset by mail.

Links are signed (itsdangerous) and expire. Their payload, which anyone holding the link can
read, names the account by id and carries only keyed fingerprints (HMAC with the site's
secret) of the address and of the password hash: never the address itself.

A verification link verifies the address only while the account still has it and no other
account has verified it. A reset link works once: the new password is set by one
compare-and-set on the password hash the link was made for, so of several uses at once one
wins, and every link made before stops working (so does any change of password in between).

The mail is sent after the answer (``mail_queue``): asking for a reset, or saving an address,
answers the same whether or not the account exists, the address is someone else's, a limit
stopped the mail, or the mail server is down. Mails to one address, in any spelling, count
against the limits and cool-down of digest confirmations (``ratelimit``), and failures are
logged, without the link.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import quote

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import Engine, func, select, update

from broadsheet.community import ratelimit
from broadsheet.community.accounts import Member, get_member, replace_password_if_unchanged
from broadsheet.config import Settings
from broadsheet.db.schema import subscribers, users
from broadsheet.digest.mailer import DeliveryError, Mailer
from broadsheet.digest.subscriptions import mail_is_configured, normalise_email
from broadsheet.names import fold

VERIFY = "account-email-verify"
RESET = "account-password-reset"
VERIFY_SECONDS = 2 * 24 * 3600
RESET_SECONDS = 3600
RESETS_BY_CLIENT = ratelimit.Limit("password_reset", hits=5, seconds=3600)
RESETS_TO_MEMBER = ratelimit.Limit("password_reset", hits=3, seconds=3600)
VERIFICATIONS_BY_MEMBER = ratelimit.Limit("email_verify", hits=5, seconds=3600)
VERIFY_COOL_DOWN = "email_verify_mail"  # per address: one link per cool-down
USED = "This link was used already, or the password changed since."
INVALID = "This link is not valid (it may be incomplete)."

log = logging.getLogger(__name__)


class InvalidAccountLink(ValueError):
    """The link was altered, is too old, or was used already (the message says which)."""


class _NotMailed(Exception):
    """Nothing to mail after all (the transaction that found it out rolls back)."""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def address_key(address: str) -> str:
    """An address as limits and lookups count it: one key for every spelling."""
    return fold(address)


def _serializer(secret: str, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=purpose)


def _fingerprint(secret: str, purpose: str, value: str) -> str:
    """A keyed digest of ``value`` for a link's payload: it shows nothing, and without the
    secret nobody can test guesses against it (as they could a plain hash of an address)."""
    key = f"{purpose}:{secret}".encode()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def _load(secret: str, purpose: str, token: str, max_age: int, size: int) -> list:
    try:
        payload = _serializer(secret, purpose).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise InvalidAccountLink("This link has expired: ask for a new one.") from exc
    except (BadSignature, ValueError, TypeError) as exc:
        raise InvalidAccountLink(INVALID) from exc
    if (
        not isinstance(payload, list)
        or len(payload) != size
        or not isinstance(payload[0], int)
        or not all(isinstance(part, str) for part in payload[1:])
    ):
        raise InvalidAccountLink(INVALID)
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


def _deliver(settings: Settings, address: str, message: EmailMessage, what: str) -> bool:
    """Send one mail now; a failure is logged (what and why, never the message) and False."""
    if not mail_is_configured(settings):
        log.warning("%s not sent: the site's mail is not configured", what)
        return False
    try:
        with Mailer(settings) as mailer:
            mailer.send(message, address)
    except DeliveryError as exc:
        log.warning("%s not sent: %s", what, exc)
        return False
    return True


def set_account_email(engine: Engine, member: Member, email: str) -> str | None:
    """Store the account's address, unverified unless it is the verified one already; None
    when ``email`` is empty (the address is removed). InvalidEmail says why an address is
    refused; RateLimited, when the member changed it too often. ``send_verification`` mails
    the link, after the answer."""
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
            # the member's own digest address, confirmed by its reader, needs no second link
            proved = _confirmed_digest_address(connection, member.id, address)
            connection.execute(
                update(users)
                .where(users.c.id == member.id)
                .values(email=address, email_verified_at=_now() if proved else None)
            )
    return address


def _confirmed_digest_address(connection, member_id: int, address: str) -> bool:
    """Whether ``address`` (in any spelling) is the member's own confirmed digest address."""
    query = select(subscribers.c.id).where(
        subscribers.c.user_id == member_id,
        subscribers.c.status == "confirmed",
        func.lower(subscribers.c.email) == address_key(address),
    )
    return connection.execute(query).first() is not None


def account_email_verified(engine: Engine, member_id: int) -> bool:
    with engine.connect() as connection:
        return connection.execute(
            select(users.c.email_verified_at.is_not(None)).where(users.c.id == member_id)
        ).scalar_one()


def _verified_elsewhere(connection, member_id: int, address: str) -> bool:
    """Whether another account has verified ``address`` (in any spelling)."""
    query = select(users.c.id).where(
        func.lower(users.c.email) == address_key(address),
        users.c.email_verified_at.is_not(None),
        users.c.id != member_id,
    )
    return connection.execute(query.limit(1)).first() is not None


def send_verification(
    engine: Engine, settings: Settings, secret: str, member_id: int, address: str, client: str
) -> bool:
    """Mail the link that verifies ``address`` for the account, if it still has the address
    unverified, no other account has verified it, and the address and ``client`` are within
    the limits and cool-down of confirmation mails; True when it went."""
    key = address_key(address)
    try:
        with engine.begin() as connection:
            # the address's counter is the first write: checks for one address run one at a time
            ratelimit.hit(connection, ratelimit.CONFIRMATION_MAILS_TO_ADDRESS, f"to:{key}")
            ratelimit.hit(connection, ratelimit.CONFIRMATION_MAILS_BY_CLIENT, f"client:{client}")
            row = connection.execute(
                select(users.c.username, users.c.email, users.c.email_verified_at).where(
                    users.c.id == member_id
                )
            ).first()
            if row is None or row.email != address or row.email_verified_at is not None:
                raise _NotMailed
            if _verified_elsewhere(connection, member_id, address):
                raise _NotMailed
            cool_down = settings.confirmation_cooldown_minutes * 60
            if not ratelimit.start_cool_down(connection, VERIFY_COOL_DOWN, f"to:{key}", cool_down):
                raise _NotMailed
    except (_NotMailed, ratelimit.RateLimited):
        return False
    token = _serializer(secret, VERIFY).dumps([member_id, _fingerprint(secret, VERIFY, key)])
    link = f"{settings.base_url.rstrip('/')}/settings/email/verify?token={quote(token)}"
    text = (
        f"Someone (we hope you) gave this address to the {settings.site_name} account "
        f"“{row.username}”, for password resets. Verify it within 2 days by opening this link:"
    )
    message = _message(settings, address, "verify your address", text, link)
    if _deliver(settings, address, message, f"address verification for member {member_id}"):
        return True
    with engine.begin() as connection:  # not sent: saving it again may send one
        ratelimit.end_cool_down(connection, VERIFY_COOL_DOWN, f"to:{key}")
    return False


def verify_account_email(engine: Engine, secret: str, token: str) -> str:
    """Mark the address the link was made for verified, while the account still has it and
    no other account has verified it; the address."""
    member_id, fingerprint = _load(secret, VERIFY, token, VERIFY_SECONDS, 2)
    with engine.begin() as connection:
        row = connection.execute(select(users.c.email).where(users.c.id == member_id)).first()
        address = None if row is None else row.email
        if address is None or _fingerprint(secret, VERIFY, address_key(address)) != fingerprint:
            raise InvalidAccountLink("This link is for an address the account no longer has.")
        if _verified_elsewhere(connection, member_id, address):
            raise InvalidAccountLink(
                f"{address} is verified for another account already: it can reset only one."
            )
        verified = connection.execute(
            update(users)
            .where(users.c.id == member_id, users.c.email == address)
            .values(email_verified_at=func.coalesce(users.c.email_verified_at, _now()))
        ).rowcount
    if not verified:  # changed meanwhile
        raise InvalidAccountLink("This link is for an address the account no longer has.")
    return address


def limit_reset_requests(engine: Engine, client: str) -> None:
    """Count one request for a reset from ``client``: RateLimited past the limit (whatever it
    asks for, so the refusal says nothing about accounts)."""
    with engine.begin() as connection:
        ratelimit.hit(connection, RESETS_BY_CLIENT, f"client:{client}")


def send_password_reset(engine: Engine, settings: Settings, secret: str, who: str) -> int:
    """Mail a reset link to each account ``who`` names (a username, or a verified address),
    within the limit per account; how many went (none when nothing matches)."""
    key = fold(who.strip())
    if not key:
        return 0
    with engine.connect() as connection:
        by_name = func.lower(users.c.username) == key
        by_address = func.lower(users.c.email) == key
        rows = connection.execute(
            select(users.c.id, users.c.username, users.c.email, users.c.password_hash).where(
                by_name | by_address, users.c.email_verified_at.is_not(None)
            )
        ).all()
    sent = 0
    for row in rows:
        try:
            with engine.begin() as connection:
                ratelimit.hit(connection, RESETS_TO_MEMBER, f"member:{row.id}")
        except ratelimit.RateLimited:
            continue
        fingerprints = [
            _fingerprint(secret, RESET, address_key(row.email)),
            _fingerprint(secret, RESET, row.password_hash),
        ]
        token = _serializer(secret, RESET).dumps([row.id, *fingerprints])
        link = f"{settings.base_url.rstrip('/')}/password/reset?token={quote(token)}"
        text = (
            f"Someone (we hope you) asked to reset the password of the {settings.site_name} "
            f"account “{row.username}”. Choose a new one within an hour at this link "
            "(it works once):"
        )
        message = _message(settings, row.email, "reset your password", text, link)
        sent += _deliver(settings, row.email, message, f"password reset for member {row.id}")
    return sent


def _reset_link(engine: Engine, secret: str, token: str) -> tuple[Member, str]:
    """The account a reset link is for and the password hash it was made for."""
    member_id, address, password = _load(secret, RESET, token, RESET_SECONDS, 3)
    with engine.connect() as connection:
        row = connection.execute(
            select(users.c.password_hash, users.c.email).where(users.c.id == member_id)
        ).first()
        member = get_member(connection, member_id)
    if (
        row is None
        or member is None
        or row.email is None
        or _fingerprint(secret, RESET, address_key(row.email)) != address
    ):
        raise InvalidAccountLink("This link is for an account or address that has changed.")
    if _fingerprint(secret, RESET, row.password_hash) != password:
        raise InvalidAccountLink(USED)
    return member, row.password_hash


def reset_target(engine: Engine, secret: str, token: str) -> Member:
    """The account a reset link is for, while the link is still good."""
    return _reset_link(engine, secret, token)[0]


def reset_password(engine: Engine, secret: str, token: str, new_password: str) -> Member:
    """Set the new password a reset link allows, once (every session and token ends);
    AccountError for a password that is refused, InvalidAccountLink for a link that no
    longer works, whoever used it first."""
    member, made_for = _reset_link(engine, secret, token)
    changed = replace_password_if_unchanged(engine, member.id, made_for, new_password)
    if changed is None:
        raise InvalidAccountLink(USED)
    return changed
