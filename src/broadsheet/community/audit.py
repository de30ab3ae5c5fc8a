"""What admins do, recorded: who, when, what, to what.

An entry is written in the caller's transaction, so it is kept exactly when the action is. The
actor's id goes empty when their account is deleted; the entry stays. ``detail`` holds what the
action needs to be understood later (a reason, the old value), never a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from broadsheet.db.schema import admin_audit, users


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor_id: int | None
    actor: str | None  # the actor's username, None once the account is gone
    action: str
    target: str
    detail: dict[str, Any]


def record_admin_action(
    connection: Connection,
    actor_id: int | None,
    action: str,
    target: str,
    detail: Mapping[str, Any] | None = None,
) -> int:
    """Record that ``actor_id`` did ``action`` (e.g. ``member.disable``) to ``target`` (e.g.
    ``user:7``); the entry's id."""
    return connection.execute(
        insert(admin_audit)
        .values(
            at=datetime.now(UTC).replace(tzinfo=None),
            actor_id=actor_id,
            action=action,
            target=target,
            detail=dict(detail or {}),
        )
        .returning(admin_audit.c.id)
    ).scalar_one()


def admin_actions(
    connection: Connection, limit: int, offset: int = 0
) -> tuple[list[AuditEntry], int]:
    """A page of the log, the newest first, and how many entries there are."""
    total = connection.execute(select(func.count()).select_from(admin_audit)).scalar_one()
    rows = connection.execute(
        select(admin_audit, users.c.username)
        .outerjoin(users, users.c.id == admin_audit.c.actor_id)
        .order_by(admin_audit.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    entries = [
        AuditEntry(r.id, r.at, r.actor_id, r.username, r.action, r.target, r.detail) for r in rows
    ]
    return entries, total
