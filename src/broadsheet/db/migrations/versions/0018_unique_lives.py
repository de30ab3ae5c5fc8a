"""Each account's life is its own: ids never reused, a session key per account, and collection
names unique under one Unicode case folding.

- SQLite gives a deleted row's id to the next insert when it was the largest. Members,
  collections, API tokens, comments and subscribers get ``AUTOINCREMENT`` (the table is rebuilt
  with its rows, indexes and triggers, as SQLite's documentation describes, with foreign keys
  unchecked meanwhile: see env.py). PostgreSQL's sequences never hand out an id twice. (An id
  SQLite freed before this upgrade can come once more: nothing recalls it. The session key
  below keeps an old cookie from opening such an account.)
- ``users.session_key``, random per account and replaced at sign-out, a password change and
  an admin's sign-out, is what a session names (it replaces the session epoch, which started at
  0 again for a new account given an old id).
- The index that keeps usernames unique in any letter case, lost on SQLite by 0017, is back.
- ``ix_papers_hidden`` holds the few hidden papers, so a list of saved papers leaves them out
  without reading a paper row per entry.
- ``collections.name_key`` holds ``broadsheet.names.fold(name)``: SQLite's ``lower()`` folds
  ASCII only, so "Über" and "über" could both be made there. Names that fold alike today are
  told apart by a number ("Über (2)").

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

import re
import secrets

import sqlalchemy as sa
from alembic import op

from broadsheet.names import fold

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

NEVER_REUSED = ("users", "collections", "api_tokens", "comments", "subscribers")
_NAME_LIMIT = 80
_FILLED_ABOVE = {"users": ("session_key VARCHAR(64)",), "collections": ("name_key VARCHAR(400)",)}


def _columns(table: str) -> set[str]:
    return {column["name"] for column in sa.inspect(op.get_bind()).get_columns(table)}


def _session_keys() -> None:
    connection = op.get_bind()
    if "session_key" not in _columns("users"):
        op.add_column("users", sa.Column("session_key", sa.String(64)))
    ids = connection.execute(sa.text("SELECT id FROM users WHERE session_key IS NULL")).scalars()
    for member_id in list(ids):
        connection.execute(
            sa.text("UPDATE users SET session_key = :key WHERE id = :id"),
            {"key": secrets.token_urlsafe(24), "id": member_id},
        )
    if "session_epoch" in _columns("users"):
        op.execute("ALTER TABLE users DROP COLUMN session_epoch")


def _unique_name(name: str, taken: set[str]) -> str:
    """``name`` with the smallest " (N)" that makes its key free, within the length limit."""
    number = 2
    while True:
        suffix = f" ({number})"
        candidate = name[: _NAME_LIMIT - len(suffix)] + suffix
        if fold(candidate) not in taken:
            return candidate
        number += 1


def _collection_keys() -> None:
    """Fill ``name_key`` where it is missing (a store stamped one behind may have it)."""
    connection = op.get_bind()
    if "name_key" not in _columns("collections"):
        op.add_column("collections", sa.Column("name_key", sa.String(400)))
    rows = connection.execute(
        sa.text("SELECT id, user_id, name, name_key FROM collections ORDER BY user_id, id")
    ).all()
    taken: dict[int, set[str]] = {}
    for row in rows:
        if row.name_key is not None:
            taken.setdefault(row.user_id, set()).add(row.name_key)
    for row in rows:
        if row.name_key is not None:
            continue
        keys = taken.setdefault(row.user_id, set())
        name = row.name if fold(row.name) not in keys else _unique_name(row.name, keys)
        keys.add(fold(name))
        connection.execute(
            sa.text("UPDATE collections SET name = :name, name_key = :key WHERE id = :id"),
            {"name": name, "key": fold(name), "id": row.id},
        )
    op.execute("DROP INDEX IF EXISTS uq_collections_user_name")  # the ASCII-only rule
    if connection.dialect.name == "postgresql":
        op.alter_column("collections", "name_key", nullable=False)
    # (SQLite: the rebuild below declares it NOT NULL)
    op.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS uq_collections_user_name_key "
        "ON collections (user_id, name_key)"
    )


def _sqlite_autoincrement(table: str) -> None:
    """Rebuild ``table`` with ``id INTEGER PRIMARY KEY AUTOINCREMENT``, keeping every row."""
    connection = op.get_bind()
    create = connection.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"),
        {"name": table},
    ).scalar_one()
    if "AUTOINCREMENT" in create.upper():
        return
    extras = connection.execute(
        sa.text(
            "SELECT sql FROM sqlite_master WHERE tbl_name = :name "
            "AND type IN ('index', 'trigger') AND sql IS NOT NULL"
        ),
        {"name": table},
    ).scalars()
    extras = list(extras)
    new = f"_new_{table}"
    body = re.sub(
        rf'^CREATE TABLE "?{table}"? \(', f'CREATE TABLE "{new}" (', create.strip(), count=1
    )
    body, found = re.subn(r"\bid INTEGER NOT NULL,", "id INTEGER PRIMARY KEY AUTOINCREMENT,", body)
    body, dropped = re.subn(rf"\s*CONSTRAINT pk_{table} PRIMARY KEY \(id\),?", "", body)
    if found != 1 or dropped != 1:
        raise RuntimeError(f"unexpected definition of the {table} table: {create}")
    body = re.sub(r",\s*\)$", "\n)", body)
    for added in _FILLED_ABOVE.get(table, ()):  # added as NULL-able columns, now all filled
        body = body.replace(added, f"{added} NOT NULL")
    columns = ", ".join(f'"{name}"' for name in _columns(table))
    connection.exec_driver_sql(f'DROP TABLE IF EXISTS "{new}"')  # left by a killed rebuild
    connection.exec_driver_sql(body)
    connection.exec_driver_sql(f'INSERT INTO "{new}" ({columns}) SELECT {columns} FROM "{table}"')
    connection.exec_driver_sql(f'DROP TABLE "{table}"')
    connection.exec_driver_sql(f'ALTER TABLE "{new}" RENAME TO "{table}"')
    for statement in extras:
        connection.exec_driver_sql(statement)


def _username_rule() -> None:
    """Usernames unique in any letter case (0017 lost this index on SQLite: its table change
    re-created ``users`` without the expression index)."""
    twins = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT lower(username) FROM users GROUP BY lower(username) HAVING count(*) > 1"
            )
        )
        .scalars()
        .all()
    )
    if twins:
        raise RuntimeError(
            f"members whose usernames differ only in letter case: {', '.join(twins[:10])}; "
            "delete one of each pair (broadsheet users ...) and upgrade again"
        )
    op.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS uq_users_username_lower ON users (lower(username))"
    )


def _hidden_papers_index() -> None:
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_papers_hidden ON papers (id) WHERE hidden_at IS NOT NULL"
    )


def upgrade() -> None:
    _hidden_papers_index()
    _username_rule()
    _session_keys()
    _collection_keys()
    if op.get_bind().dialect.name == "sqlite":
        for table in NEVER_REUSED:
            _sqlite_autoincrement(table)
        problems = op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").all()
        if problems:
            raise RuntimeError(f"foreign keys broken by the rebuild: {problems[:5]}")
    else:
        op.alter_column("users", "session_key", nullable=False)


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_papers_hidden")
    op.drop_index("uq_collections_user_name_key", "collections")
    op.create_index(
        "uq_collections_user_name", "collections", ["user_id", sa.text("lower(name)")], unique=True
    )
    op.drop_column("collections", "name_key")
    op.add_column(
        "users",
        sa.Column("session_epoch", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    op.drop_column("users", "session_key")
