"""Hardening: sessions that sign-out ends, and confirmation links good once for one state.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # bumped by sign-out, a password change or an admin's revocation: older sessions end (a
    # plain ALTER TABLE: a batch would recreate ``users`` without its expression index)
    op.add_column(
        "users",
        sa.Column("session_epoch", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    with op.batch_alter_table("subscribers") as batch:
        # the one confirmation link that is good now (None: no link is good)
        batch.add_column(sa.Column("confirmation_nonce", sa.String(64)))
        batch.add_column(sa.Column("confirmation_sent_at", sa.DateTime))
        # an address a member asked to move to, kept apart until its link is opened
        batch.add_column(sa.Column("pending_email", sa.String(320)))
        # the cool-down looks for links mailed in the last minutes, among every subscriber
        batch.create_index("ix_subscribers_confirmation_sent_at", ["confirmation_sent_at"])


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_index("ix_subscribers_confirmation_sent_at")
        batch.drop_column("pending_email")
        batch.drop_column("confirmation_sent_at")
        batch.drop_column("confirmation_nonce")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_epoch")
