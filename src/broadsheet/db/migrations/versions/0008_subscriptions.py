"""Digest subscriptions: frequency, topics, double opt-in and delivery health.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(
            sa.Column("frequency", sa.String(8), nullable=False, server_default="daily")
        )
        batch.add_column(sa.Column("topics", sa.JSON, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("confirmed_at", sa.DateTime))
        batch.add_column(sa.Column("unsubscribed_at", sa.DateTime))
        batch.add_column(sa.Column("failure_count", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        for column in ("failure_count", "unsubscribed_at", "confirmed_at", "topics", "frequency"):
            batch.drop_column(column)
