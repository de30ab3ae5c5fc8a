"""Member accounts: sign up and sign in with argon2id password hashes, end sessions.

Each member has a random session key; a session remembers the key it began with and ends when
the key is replaced. Signing out everywhere, a password change (or reset) and an admin's
``users sign-out`` replace it, ending every session of that member, copied cookies included,
and revoke the member's API tokens: recovering an account ends every way into it. The key is
the account's own, so a cookie of a deleted account opens nothing, whatever id comes next.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from broadsheet.community.passwords import hash_password, needs_rehash, verify_password
from broadsheet.db.schema import api_tokens, users
from broadsheet.names import fold

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{1,38}[A-Za-z0-9_]")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 takes any length; this bounds the work one request can cause


class AccountError(ValueError):
    """A sign-up or sign-in problem, worded for the member; ``field`` names the form field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    username: str
    is_admin: bool
    session_key: str = ""  # sessions begun with another key are over


def new_session_key() -> str:
    return secrets.token_urlsafe(24)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def check_username(username: str) -> str:
    username = username.strip()
    if not USERNAME.fullmatch(username):
        raise AccountError(
            "username",
            "Usernames are 3 to 40 letters, digits, '.', '-' or '_', "
            "starting with a letter or digit.",
        )
    return username


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError("password", f"Passwords need at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD:
        raise AccountError("password", f"Passwords are at most {MAX_PASSWORD} characters.")
    return password


def _member(row) -> Member:
    return Member(
        id=row.id,
        username=row.username,
        is_admin=bool(row.is_admin),
        session_key=row.session_key,
    )


def create_member(
    engine: Engine, username: str, password: str, *, is_admin: bool = False
) -> Member:
    """A new member; usernames are unique regardless of letter case."""
    username = check_username(username)
    password_hash = hash_password(check_password(password))
    with engine.begin() as connection:
        if _find(connection, username) is not None:
            raise AccountError("username", f"The username {username!r} is taken.")
        try:
            result = connection.execute(
                users.insert().values(
                    username=username,
                    password_hash=password_hash,
                    is_admin=is_admin,
                    created_at=_now(),
                    session_key=(key := new_session_key()),
                )
            )
        except IntegrityError as exc:  # a concurrent sign-up took it first
            raise AccountError("username", f"The username {username!r} is taken.") from exc
        return Member(result.inserted_primary_key[0], username, is_admin, key)


def _find(connection: Connection, username: str):
    query = select(users).where(func.lower(users.c.username) == fold(username.strip()))
    return connection.execute(query).first()


def authenticate(engine: Engine, username: str, password: str) -> Member:
    """The member whose password this is; one message for every failure, so it leaks nothing.

    Raises HasherBusy, before any hashing, when the process is hashing all it can already.
    """
    with engine.connect() as connection:
        row = _find(connection, username) if len(password) <= MAX_PASSWORD else None
    stored = None if row is None else row.password_hash
    if not verify_password(stored, password[:MAX_PASSWORD]):
        raise AccountError("password", "Wrong username or password.")
    if row.disabled_at is not None:
        raise AccountError("username", "This account is disabled: ask an admin of this site.")
    if needs_rehash(stored):
        with engine.begin() as connection:
            connection.execute(
                update(users)
                .where(users.c.id == row.id)
                .values(password_hash=hash_password(password))
            )
    return _member(row)


def find_member(connection: Connection, username: str) -> Member | None:
    """The member by username, in any letter case."""
    row = _find(connection, username)
    return _member(row) if row is not None else None


def get_member(connection: Connection, member_id: int) -> Member | None:
    row = connection.execute(select(users).where(users.c.id == member_id)).first()
    return None if row is None else _member(row)


def change_password(engine: Engine, username: str, password: str) -> Member:
    """Set a new password (the member's own choice, or an admin's reset); every session and
    API token of the member ends."""
    password_hash = hash_password(check_password(password))
    return _update_member(engine, username, password_hash=password_hash)


def end_sessions(engine: Engine, username: str, *, revoke_tokens: bool = True) -> Member:
    """End every session of this member, wherever it is, and (unless told otherwise: a plain
    sign-out keeps them, and says so) every API token: sign-out everywhere, an admin's
    revocation."""
    return _update_member(engine, username, revoke_tokens=revoke_tokens)


def _update_member(
    engine: Engine, username: str, *, revoke_tokens: bool = True, **values
) -> Member:
    """Apply ``values`` and end every way in (sessions, tokens), in one transaction."""
    with engine.begin() as connection:
        row = _find(connection, username)
        if row is None:
            raise AccountError("username", f"No member called {username!r}.")
        if values:
            connection.execute(update(users).where(users.c.id == row.id).values(**values))
        return end_every_way_in(connection, row.id, revoke_tokens=revoke_tokens)


def end_every_way_in(
    connection: Connection, member_id: int, *, revoke_tokens: bool = True
) -> Member:
    """Replace the member's session key and revoke their API tokens (inside the caller's
    transaction, beside whatever change called for it); the member as now stored."""
    connection.execute(
        update(users).where(users.c.id == member_id).values(session_key=new_session_key())
    )
    if revoke_tokens:
        connection.execute(delete(api_tokens).where(api_tokens.c.user_id == member_id))
    return _member(connection.execute(select(users).where(users.c.id == member_id)).one())


def set_admin(engine: Engine, username: str, is_admin: bool = True) -> Member:
    """Grant or revoke admin rights (from the command line)."""
    with engine.begin() as connection:
        row = _find(connection, username)
        if row is None:
            raise AccountError("username", f"No member called {username!r}.")
        connection.execute(update(users).where(users.c.id == row.id).values(is_admin=is_admin))
    return Member(row.id, row.username, is_admin, row.session_key)


def replace_password_if_unchanged(
    engine: Engine, member_id: int, expected_hash: str, new_password: str
) -> Member | None:
    """Set a new password only while the stored hash is still ``expected_hash`` (the one a reset
    link was made for), in one compare-and-set; every session and API token then ends.

    None when the hash has changed meanwhile (the link was used, or the password changed).
    """
    password_hash = hash_password(check_password(new_password))
    with engine.begin() as connection:
        changed = connection.execute(
            update(users)
            .where(users.c.id == member_id, users.c.password_hash == expected_hash)
            .values(password_hash=password_hash)
        ).rowcount
        if changed != 1:
            return None
        return end_every_way_in(connection, member_id)
