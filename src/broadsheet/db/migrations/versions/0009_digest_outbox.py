"""The digest outbox (one row per subscriber per period) and the papers each was sent.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digest_outbox",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column(
            "subscriber_id",
            sa.Integer,
            sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("period_key", sa.String(16), nullable=False),  # 2026-11-24 or 2026-W48
        sa.Column("status", sa.String(16), nullable=False),  # pending, sent, failed, empty
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("next_attempt_at", sa.DateTime, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("sent_at", sa.DateTime),
        sa.PrimaryKeyConstraint("id", name="pk_digest_outbox"),
        sa.UniqueConstraint("subscriber_id", "period_key", name="uq_digest_outbox_subscriber_id"),
    )
    op.create_index("ix_digest_outbox_period_key", "digest_outbox", ["period_key", "status"])
    op.create_table(
        "digest_sent_papers",
        sa.Column(
            "subscriber_id",
            sa.Integer,
            sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "paper_id",
            sa.String(64),
            sa.ForeignKey("papers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("period_key", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("subscriber_id", "paper_id", name="pk_digest_sent_papers"),
    )


def downgrade() -> None:
    op.drop_table("digest_sent_papers")
    op.drop_table("digest_outbox")
