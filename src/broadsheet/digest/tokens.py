"""Signed links in mails: confirming a subscription (expires) and unsubscribing (does not).

A confirmation link also names the state it was issued for (a nonce the subscription row
keeps until the link is used or replaced), so it works once and only while nothing has
changed since; an unsubscribe link names the subscription alone and works always.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

CONFIRM = "subscription-confirm"
UNSUBSCRIBE = "subscription-unsubscribe"


class InvalidLink(ValueError):
    """The link was altered, made for another purpose, or (``expired``) is too old."""

    def __init__(self, message: str, expired: bool = False):
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True, slots=True)
class LinkSubject:
    subscriber_id: int
    email: str


@dataclass(frozen=True, slots=True)
class ConfirmationSubject:
    """What one confirmation link confirms: ``email`` for a subscription, in state ``nonce``."""

    subscriber_id: int
    email: str
    nonce: str


def make_token(secret: str, purpose: str, subject: LinkSubject) -> str:
    serializer = URLSafeTimedSerializer(secret, salt=purpose)
    return serializer.dumps([subject.subscriber_id, subject.email])


def read_token(secret: str, purpose: str, token: str, max_age: float | None = None) -> LinkSubject:
    """The subscriber a link names; ``max_age`` in seconds (None: links never expire)."""
    payload = _load(secret, purpose, token, max_age)
    if len(payload) != 2:
        raise InvalidLink(_NOT_VALID)
    subscriber_id, email = payload
    return LinkSubject(subscriber_id, email)


def make_confirmation_token(secret: str, subject: ConfirmationSubject) -> str:
    serializer = URLSafeTimedSerializer(secret, salt=CONFIRM)
    return serializer.dumps([subject.subscriber_id, subject.email, subject.nonce])


def read_confirmation_token(secret: str, token: str, max_age: float) -> ConfirmationSubject:
    """What a confirmation link confirms; links made before they named a state are refused."""
    payload = _load(secret, CONFIRM, token, max_age)
    if len(payload) == 2:
        raise InvalidLink(
            "This confirmation link comes from an older version of this site and no longer works.",
            expired=True,
        )
    if len(payload) != 3:
        raise InvalidLink(_NOT_VALID)
    subscriber_id, email, nonce = payload
    return ConfirmationSubject(subscriber_id, email, str(nonce))


_NOT_VALID = "This link is not valid (it may be incomplete)."


def _load(secret: str, purpose: str, token: str, max_age: float | None) -> list:
    """A signed link's fields: a subscriber id and an address first, then any others."""
    serializer = URLSafeTimedSerializer(secret, salt=purpose)
    try:
        payload = serializer.loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise InvalidLink("This link has expired.", expired=True) from exc
    except (BadSignature, ValueError, TypeError) as exc:
        raise InvalidLink(_NOT_VALID) from exc
    if not isinstance(payload, list) or len(payload) < 2:
        raise InvalidLink(_NOT_VALID)
    try:
        return [int(payload[0]), str(payload[1]), *payload[2:]]
    except (TypeError, ValueError) as exc:
        raise InvalidLink(_NOT_VALID) from exc
