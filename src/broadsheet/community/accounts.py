"""Member accounts: sign up and sign in with argon2id password hashes."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.exc import IntegrityError

from broadsheet.db.schema import users

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{1,38}[A-Za-z0-9_]")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 takes any length; this bounds the work one request can cause

_hasher = PasswordHasher()
# Verifying against this keeps "no such member" as slow as "wrong password".
_DUMMY_HASH = _hasher.hash("an unguessable placeholder password")


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
    return Member(id=row.id, username=row.username, is_admin=bool(row.is_admin))


def create_member(
    engine: Engine, username: str, password: str, *, is_admin: bool = False
) -> Member:
    """A new member; usernames are unique regardless of letter case."""
    username = check_username(username)
    password_hash = _hasher.hash(check_password(password))
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
                )
            )
        except IntegrityError as exc:  # a concurrent sign-up took it first
            raise AccountError("username", f"The username {username!r} is taken.") from exc
        return Member(result.inserted_primary_key[0], username, is_admin)


def _find(connection: Connection, username: str):
    query = select(users).where(func.lower(users.c.username) == username.strip().lower())
    return connection.execute(query).first()


def authenticate(engine: Engine, username: str, password: str) -> Member:
    """The member whose password this is; one message for every failure, so it leaks nothing."""
    failure = AccountError("password", "Wrong username or password.")
    with engine.connect() as connection:
        row = _find(connection, username) if len(password) <= MAX_PASSWORD else None
    if row is None:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password[:MAX_PASSWORD] + "\0")
        raise failure
    try:
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise failure from None
    if _hasher.check_needs_rehash(row.password_hash):
        with engine.begin() as connection:
            connection.execute(
                update(users)
                .where(users.c.id == row.id)
                .values(password_hash=_hasher.hash(password))
            )
    return _member(row)


def get_member(connection: Connection, member_id: int) -> Member | None:
    row = connection.execute(select(users).where(users.c.id == member_id)).first()
    return None if row is None else _member(row)


def set_admin(engine: Engine, username: str, is_admin: bool = True) -> Member:
    """Grant or revoke admin rights (from the command line)."""
    with engine.begin() as connection:
        row = _find(connection, username)
        if row is None:
            raise AccountError("username", f"No member called {username!r}.")
        connection.execute(update(users).where(users.c.id == row.id).values(is_admin=is_admin))
    return Member(row.id, row.username, is_admin)
