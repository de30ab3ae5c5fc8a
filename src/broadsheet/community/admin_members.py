"""What admins do to members: find them, disable or enable, sign out everywhere, make or
unmake admin, delete. Each action is recorded in the audit log in its own transaction.

An admin cannot disable, demote or delete their own account here (the command line can), so
no admin locks themselves out by a slip, and the last admin is never demoted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, func, or_, select, update

from broadsheet.community.accounts import Member, end_every_way_in, get_member
from broadsheet.community.audit import record_admin_action
from broadsheet.community.member_data import delete_member
from broadsheet.community.moderation import NotAllowed
from broadsheet.db.schema import users
from broadsheet.names import fold


class MemberNotFound(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class MemberRow:
    id: int
    username: str
    email: str | None
    email_verified: bool
    is_admin: bool
    created_at: datetime
    disabled_at: datetime | None


def _require_admin(admin: Member | None) -> Member:
    if admin is None or not admin.is_admin:
        raise NotAllowed("Only admins can manage members.")
    return admin


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def find_members(
    connection: Connection, admin: Member | None, query: str, limit: int, offset: int = 0
) -> tuple[list[MemberRow], int]:
    """A page of members whose username or address holds ``query`` (any case), newest first,
    and how many match."""
    _require_admin(admin)
    where = []
    if query.strip():
        pattern = _like(fold(query.strip()))
        where.append(
            or_(
                func.lower(users.c.username).like(pattern, escape="\\"),
                func.lower(func.coalesce(users.c.email, "")).like(pattern, escape="\\"),
            )
        )
    total = connection.execute(select(func.count()).select_from(users).where(*where)).scalar_one()
    rows = connection.execute(
        select(
            users.c.id,
            users.c.username,
            users.c.email,
            users.c.email_verified_at.is_not(None),
            users.c.is_admin,
            users.c.created_at,
            users.c.disabled_at,
        )
        .where(*where)
        .order_by(users.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [MemberRow(r[0], r[1], r[2], bool(r[3]), bool(r[4]), r[5], r[6]) for r in rows], total


def _target(connection: Connection, admin: Member, member_id: int, what: str) -> Member:
    member = get_member(connection, member_id)
    if member is None:
        raise MemberNotFound(f"No member {member_id}.")
    if member.id == admin.id:
        raise NotAllowed(f"You cannot {what} your own account here.")
    return member


def set_disabled(engine: Engine, admin: Member | None, member_id: int, disabled: bool) -> str:
    """Disable an account (it cannot sign in; every session and API token ends) or enable it
    again; the member's username."""
    admin = _require_admin(admin)
    with engine.begin() as connection:
        member = _target(connection, admin, member_id, "disable")
        stamp = datetime.now(UTC).replace(tzinfo=None) if disabled else None
        connection.execute(update(users).where(users.c.id == member.id).values(disabled_at=stamp))
        if disabled:
            end_every_way_in(connection, member.id)
        action = "member.disable" if disabled else "member.enable"
        record_admin_action(connection, admin.id, action, f"user:{member.id}",
                            {"username": member.username})  # fmt: skip
    return member.username


def sign_out_everywhere(engine: Engine, admin: Member | None, member_id: int) -> str:
    """End every session and API token of a member; their username."""
    admin = _require_admin(admin)
    with engine.begin() as connection:
        member = get_member(connection, member_id)
        if member is None:
            raise MemberNotFound(f"No member {member_id}.")
        end_every_way_in(connection, member.id)
        record_admin_action(connection, admin.id, "member.sign_out", f"user:{member.id}",
                            {"username": member.username})  # fmt: skip
    return member.username


def set_member_admin(engine: Engine, admin: Member | None, member_id: int, is_admin: bool) -> str:
    """Make a member an admin, or an admin a member again; their username."""
    admin = _require_admin(admin)
    with engine.begin() as connection:
        member = _target(connection, admin, member_id, "demote" if not is_admin else "promote")
        connection.execute(update(users).where(users.c.id == member.id).values(is_admin=is_admin))
        if not is_admin:
            admins = select(func.count()).select_from(users).where(users.c.is_admin.is_(True))
            if connection.execute(admins).scalar_one() == 0:
                raise NotAllowed("The site needs at least one admin.")
        action = "member.make_admin" if is_admin else "member.unmake_admin"
        record_admin_action(connection, admin.id, action, f"user:{member.id}",
                            {"username": member.username})  # fmt: skip
    return member.username


def delete_as_admin(engine: Engine, admin: Member | None, member_id: int) -> str:
    """Delete a member's account and everything it owns (as their own deletion does)."""
    admin = _require_admin(admin)
    with engine.connect() as connection:
        member = _target(connection, admin, member_id, "delete")
    delete_member(engine, member)
    with engine.begin() as connection:
        record_admin_action(connection, admin.id, "member.delete", f"user:{member.id}",
                            {"username": member.username})  # fmt: skip
    return member.username


COMMAND_LINE = {"via": "command line"}


def record_command_line_action(engine: Engine, action: str, member: Member) -> None:
    """Record an admin action taken with the ``broadsheet`` command (no actor: whoever runs
    it holds the store)."""
    with engine.begin() as connection:
        record_admin_action(connection, None, action, f"user:{member.id}",
                            {"username": member.username, **COMMAND_LINE})  # fmt: skip


def set_disabled_by_name(engine: Engine, username: str, disabled: bool) -> Member:
    """Disable or enable an account from the command line (an admin's own too)."""
    with engine.begin() as connection:
        row = connection.execute(
            select(users.c.id).where(func.lower(users.c.username) == fold(username.strip()))
        ).first()
        if row is None:
            raise MemberNotFound(f"No member called {username!r}.")
        stamp = datetime.now(UTC).replace(tzinfo=None) if disabled else None
        connection.execute(update(users).where(users.c.id == row.id).values(disabled_at=stamp))
        member = end_every_way_in(connection, row.id, revoke_tokens=disabled)
    record_command_line_action(engine, "member.disable" if disabled else "member.enable", member)
    return member
