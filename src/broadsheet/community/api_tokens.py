"""Members' API tokens: made in settings, shown once, kept only as a hash, revoked at will."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, delete, func, select, update

from broadsheet.community.accounts import Member, get_member
from broadsheet.community.library import LibraryError, NotFound, checked_name
from broadsheet.db.schema import api_tokens

PREFIX = "bst_"
MAX_TOKENS = 20  # per member
TOUCH_EVERY = timedelta(minutes=5)  # how stale "last used" may get (a write per use is too many)


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def create_token(engine: Engine, member: Member, name: str) -> tuple[ApiToken, str]:
    """A new token named ``name``; the token itself is returned here and never again."""
    try:
        name = checked_name(name)
    except LibraryError as exc:
        raise LibraryError(str(exc).replace("Collection name", "Token name")) from None
    token = PREFIX + secrets.token_urlsafe(32)
    now = _now()
    with engine.begin() as connection:
        count = connection.execute(
            select(func.count()).where(api_tokens.c.user_id == member.id)
        ).scalar_one()
        if count >= MAX_TOKENS:
            raise LibraryError(f"Too many tokens: a member keeps at most {MAX_TOKENS}.")
        new_id = connection.execute(
            api_tokens.insert()
            .values(user_id=member.id, name=name, token_hash=_hash(token), created_at=now)
            .returning(api_tokens.c.id)
        ).scalar_one()
    return ApiToken(new_id, name, now, None), token


def member_tokens(connection: Connection, member_id: int) -> list[ApiToken]:
    rows = connection.execute(
        select(
            api_tokens.c.id, api_tokens.c.name, api_tokens.c.created_at, api_tokens.c.last_used_at
        )
        .where(api_tokens.c.user_id == member_id)
        .order_by(api_tokens.c.created_at, api_tokens.c.id)
    )
    return [ApiToken(*row) for row in rows]


def revoke_token(engine: Engine, member: Member, token_id: int) -> None:
    with engine.begin() as connection:
        gone = connection.execute(
            delete(api_tokens)
            .where(api_tokens.c.id == token_id, api_tokens.c.user_id == member.id)
            .returning(api_tokens.c.id)
        ).first()
    if gone is None:
        raise NotFound(f"No token {token_id} of yours here.")


def member_for_token(engine: Engine, token: str) -> Member | None:
    """The member a presented token belongs to; None for an unknown or revoked one."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    digest = _hash(token)
    with engine.connect() as connection:
        row = connection.execute(
            select(api_tokens.c.id, api_tokens.c.user_id, api_tokens.c.last_used_at).where(
                api_tokens.c.token_hash == digest
            )
        ).first()
        if row is None:
            return None
        member = get_member(connection, row.user_id)
    now = _now()
    if row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY:
        with engine.begin() as connection:
            connection.execute(
                update(api_tokens).where(api_tokens.c.id == row.id).values(last_used_at=now)
            )
    return member
