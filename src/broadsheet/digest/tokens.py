"""Signed links in mails: confirming a subscription (expires) and unsubscribing (does not).

A link's payload, which anyone holding it can read, names the subscription by id and the
address it was made for by a keyed fingerprint (HMAC with the site's secret): never the
address itself. A link works only while the subscription still has that address (or, for a
confirmation, is moving to it).

A confirmation link also names the state it was issued for (a nonce the subscription row
keeps until the link is used or replaced), so it works once and only while nothing has
changed since; an unsubscribe link names the subscription alone and works always, including
those mailed before links carried fingerprints (their payload has the address).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

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
    """What a link is made for: a subscription at ``email``."""

    subscriber_id: int
    email: str


@dataclass(frozen=True, slots=True)
class ConfirmationSubject:
    """What one confirmation link confirms: ``email`` for a subscription, in state ``nonce``."""

    subscriber_id: int
    email: str
    nonce: str


@dataclass(frozen=True, slots=True)
class SignedLink:
    """What a link that came back names: a subscription, the address it was made for (as a
    fingerprint, ``is_for`` tells whether an address is that one) and, for a confirmation,
    the state it was issued for."""

    subscriber_id: int
    mark: str
    nonce: str | None
    _key: bytes = field(repr=False, compare=False)

    def is_for(self, address: str | None) -> bool:
        if address is None:
            return False
        if "@" in self.mark:  # made before links carried fingerprints
            return self.mark.lower() == address.lower()
        return hmac.compare_digest(self.mark, _fingerprint(self._key, address))


def _key(secret: str, purpose: str) -> bytes:
    return f"{purpose}:{secret}".encode()


def _fingerprint(key: bytes, address: str) -> str:
    """A keyed digest of an address, whatever its letter case: without the secret nobody can
    test guesses against it (as they could a plain hash of an address)."""
    return hmac.new(key, address.lower().encode(), hashlib.sha256).hexdigest()[:32]


def make_token(secret: str, purpose: str, subject: LinkSubject) -> str:
    serializer = URLSafeTimedSerializer(secret, salt=purpose)
    mark = _fingerprint(_key(secret, purpose), subject.email)
    return serializer.dumps([subject.subscriber_id, mark])


def read_token(secret: str, purpose: str, token: str, max_age: float | None = None) -> SignedLink:
    """The subscription a link names; ``max_age`` in seconds (None: links never expire)."""
    payload = _load(secret, purpose, token, max_age)
    if len(payload) != 2:
        raise InvalidLink(_NOT_VALID)
    subscriber_id, mark = payload
    return SignedLink(subscriber_id, mark, None, _key(secret, purpose))


def make_confirmation_token(secret: str, subject: ConfirmationSubject) -> str:
    serializer = URLSafeTimedSerializer(secret, salt=CONFIRM)
    mark = _fingerprint(_key(secret, CONFIRM), subject.email)
    return serializer.dumps([subject.subscriber_id, mark, subject.nonce])


def read_confirmation_token(secret: str, token: str, max_age: float) -> SignedLink:
    """What a confirmation link confirms; links made before they named a state are refused."""
    payload = _load(secret, CONFIRM, token, max_age)
    if len(payload) == 2:
        raise InvalidLink(
            "This confirmation link comes from an older version of this site and no longer works.",
            expired=True,
        )
    if len(payload) != 3:
        raise InvalidLink(_NOT_VALID)
    subscriber_id, mark, nonce = payload
    return SignedLink(subscriber_id, mark, str(nonce), _key(secret, CONFIRM))


_NOT_VALID = "This link is not valid (it may be incomplete)."


def _load(secret: str, purpose: str, token: str, max_age: float | None) -> list:
    """A signed link's fields: a subscriber id and an address mark first, then any others."""
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
