"""Newcomers: one subscription per mailbox whatever its letter case, and edited comments.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_STATUS_RANK = "CASE status WHEN 'confirmed' THEN 0 WHEN 'pending' THEN 1 ELSE 2 END"


def _merge_case_duplicates() -> None:
    """Keep one row per mailbox: the confirmed one, a member's, then the oldest."""
    connection = op.get_bind()
    rows = connection.execute(
        sa.text(
            "SELECT id, lower(email) AS mailbox FROM subscribers "
            f"ORDER BY lower(email), {_STATUS_RANK}, user_id IS NULL, id"
        )
    ).all()
    kept: set[str] = set()
    extra: list[int] = []
    for row in rows:
        if row.mailbox in kept:
            extra.append(row.id)
        else:
            kept.add(row.mailbox)
    for subscriber_id in extra:
        connection.execute(sa.text("DELETE FROM subscribers WHERE id = :id"), {"id": subscriber_id})


def upgrade() -> None:
    _merge_case_duplicates()
    op.create_index(
        "uq_subscribers_email_lower", "subscribers", [sa.text("lower(email)")], unique=True
    )
    with op.batch_alter_table("comments") as batch:
        batch.add_column(sa.Column("edited_at", sa.DateTime))


def downgrade() -> None:
    with op.batch_alter_table("comments") as batch:
        batch.drop_column("edited_at")
    op.drop_index("uq_subscribers_email_lower", "subscribers")
