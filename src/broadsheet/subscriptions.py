"""Digest subscribers: addresses collected from the Subscribe banner."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import Engine

from broadsheet.db.schema import subscribers
from broadsheet.papers.repository import insert_ignoring_conflicts

# RFC 5322 allows far more, but a digest goes to mailboxes people type: local@domain.tld
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")


class InvalidEmail(ValueError):
    pass


def normalise_email(email: str) -> str:
    email = email.strip()
    if len(email) > 320 or not _EMAIL.fullmatch(email):
        raise InvalidEmail(f"{email!r} is not an email address")
    local, domain = email.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def add_subscriber(engine: Engine, email: str) -> str:
    """Record ``email`` as pending confirmation (idempotent); returns it normalised."""
    address = normalise_email(email)
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine.begin() as connection:
        statement = insert_ignoring_conflicts(connection, subscribers, ["email"])
        connection.execute(statement.values(email=address, status="pending", created_at=now))
    return address
