"""Digest subscriptions by email address alone, with double opt-in.

An address is stored as pending and sent a confirmation mail with a signed link that expires;
only the link confirms it. Unsubscribing needs only the (non-expiring) link in every mail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Engine, select, update

from broadsheet.config import Settings
from broadsheet.db.bulk import insert_ignoring_conflicts
from broadsheet.db.schema import subscribers
from broadsheet.digest import tokens

# RFC 5322 allows far more, but a digest goes to mailboxes people type: local@domain.tld
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")


class InvalidEmail(ValueError):
    pass


class Frequency(StrEnum):
    daily = "daily"
    weekly = "weekly"


class Status(StrEnum):
    pending = "pending"
    confirmed = "confirmed"
    unsubscribed = "unsubscribed"
    paused = "paused"  # mail to it kept failing permanently


@dataclass(frozen=True, slots=True)
class Subscriber:
    id: int
    email: str
    status: Status
    frequency: Frequency
    topics: tuple[str, ...] = ()  # saved searches


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def normalise_email(email: str) -> str:
    email = email.strip()
    if len(email) > 320 or not _EMAIL.fullmatch(email):
        raise InvalidEmail(f"{email!r} is not an email address")
    local, domain = email.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def subscriber_from_row(row) -> Subscriber:
    """A ``subscribers`` row as a Subscriber."""
    topics = tuple(row.topics or ())
    return Subscriber(row.id, row.email, Status(row.status), Frequency(row.frequency), topics)


def add_subscriber(
    engine: Engine, email: str, frequency: Frequency = Frequency.daily
) -> Subscriber:
    """Record ``email`` as pending (idempotent); a confirmed address stays confirmed.

    An address that unsubscribed becomes pending again: it must confirm anew.
    """
    address = normalise_email(email)
    with engine.begin() as connection:
        statement = insert_ignoring_conflicts(connection, subscribers, ["email"])
        connection.execute(
            statement.values(
                email=address, status=Status.pending, frequency=frequency, created_at=_now()
            )
        )
        connection.execute(
            update(subscribers)
            .where(subscribers.c.email == address, subscribers.c.status != Status.confirmed)
            .values(status=Status.pending, frequency=frequency)
        )
        row = connection.execute(select(subscribers).where(subscribers.c.email == address)).one()
    return subscriber_from_row(row)


def set_topics(engine: Engine, email: str, topics: list[str]) -> Subscriber:
    """Replace a subscriber's saved searches (blank ones dropped, duplicates once)."""
    cleaned = list(dict.fromkeys(t.strip() for t in topics if t.strip()))
    address = normalise_email(email)
    with engine.begin() as connection:
        connection.execute(
            update(subscribers).where(subscribers.c.email == address).values(topics=cleaned)
        )
        row = connection.execute(select(subscribers).where(subscribers.c.email == address)).first()
    if row is None:
        raise InvalidEmail(f"{address} is not subscribed")
    return subscriber_from_row(row)


def link_subject(subscriber: Subscriber) -> tokens.LinkSubject:
    return tokens.LinkSubject(subscriber.id, subscriber.email)


def _find(engine: Engine, subject: tokens.LinkSubject):
    with engine.connect() as connection:
        row = connection.execute(
            select(subscribers).where(
                subscribers.c.id == subject.subscriber_id, subscribers.c.email == subject.email
            )
        ).first()
    if row is None:
        raise tokens.InvalidLink("This link is for a subscription that no longer exists.")
    return row


def _change_status(engine: Engine, subscriber_id: int, status: Status, **values) -> Subscriber:
    """Move a subscription to ``status`` (a no-op when it is there already); the result."""
    with engine.begin() as connection:
        connection.execute(
            update(subscribers)
            .where(subscribers.c.id == subscriber_id, subscribers.c.status != status)
            .values(status=status, **values)
        )
        row = connection.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).one()
    return subscriber_from_row(row)


def confirm(engine: Engine, settings: Settings, secret: str, token: str) -> Subscriber:
    """Confirm the subscription a confirmation link names (idempotent)."""
    subject = tokens.read_token(
        secret, tokens.CONFIRM, token, max_age=settings.confirm_link_days * 86_400
    )
    _find(engine, subject)
    return _change_status(
        engine, subject.subscriber_id, Status.confirmed, confirmed_at=_now(), failure_count=0
    )


def subscriber_for_unsubscribe(engine: Engine, secret: str, token: str) -> Subscriber:
    """Who an unsubscribe link is for (to show the page before the button is pressed)."""
    subject = tokens.read_token(secret, tokens.UNSUBSCRIBE, token)
    return subscriber_from_row(_find(engine, subject))


def unsubscribe(engine: Engine, secret: str, token: str) -> Subscriber:
    """Stop every further digest to the address an unsubscribe link names (idempotent)."""
    subject = tokens.read_token(secret, tokens.UNSUBSCRIBE, token)
    _find(engine, subject)
    return _change_status(
        engine, subject.subscriber_id, Status.unsubscribed, unsubscribed_at=_now()
    )


def member_subscription(engine: Engine, member_id: int) -> Subscriber | None:
    with engine.connect() as connection:
        row = connection.execute(
            select(subscribers).where(subscribers.c.user_id == member_id)
        ).first()
    return None if row is None else subscriber_from_row(row)


def save_member_subscription(
    engine: Engine, member_id: int, email: str, frequency: Frequency, topics: list[str]
) -> Subscriber:
    """A member's own subscription: address, frequency and topics, from their settings.

    A new or changed address, or one that was someone's before, is pending until confirmed
    by mail, so nobody can sign an address they do not read up for digests.
    """
    address = normalise_email(email)
    cleaned = list(dict.fromkeys(t.strip() for t in topics if t.strip()))[:20]
    with engine.begin() as connection:
        mine = connection.execute(
            select(subscribers).where(subscribers.c.user_id == member_id)
        ).first()
        theirs = connection.execute(
            select(subscribers).where(subscribers.c.email == address)
        ).first()
        values = {"frequency": frequency, "topics": cleaned}
        if mine is not None and mine.email == address:
            connection.execute(
                update(subscribers).where(subscribers.c.id == mine.id).values(values)
            )
            subscriber_id = mine.id
        else:
            if mine is not None:  # the member moves to another address: the old row lets go
                connection.execute(
                    update(subscribers).where(subscribers.c.id == mine.id).values(user_id=None)
                )
            values |= {"user_id": member_id, "status": Status.pending}
            if theirs is None:
                result = connection.execute(
                    subscribers.insert().values(email=address, created_at=_now(), **values)
                )
                subscriber_id = result.inserted_primary_key[0]
            else:
                connection.execute(
                    update(subscribers).where(subscribers.c.id == theirs.id).values(values)
                )
                subscriber_id = theirs.id
        row = connection.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).one()
    return subscriber_from_row(row)


def stop_member_subscription(engine: Engine, member_id: int) -> None:
    subscription = member_subscription(engine, member_id)
    if subscription is not None:
        _change_status(engine, subscription.id, Status.unsubscribed, unsubscribed_at=_now())
