"""Signed links in mails: confirming a subscription (expires) and unsubscribing (does not)."""

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


def make_token(secret: str, purpose: str, subject: LinkSubject) -> str:
    serializer = URLSafeTimedSerializer(secret, salt=purpose)
    return serializer.dumps([subject.subscriber_id, subject.email])


def read_token(secret: str, purpose: str, token: str, max_age: float | None = None) -> LinkSubject:
    """The subscriber a link names; ``max_age`` in seconds (None: links never expire)."""
    serializer = URLSafeTimedSerializer(secret, salt=purpose)
    try:
        subscriber_id, email = serializer.loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise InvalidLink("This link has expired.", expired=True) from exc
    except (BadSignature, ValueError, TypeError) as exc:
        raise InvalidLink("This link is not valid (it may be incomplete).") from exc
    return LinkSubject(int(subscriber_id), str(email))
