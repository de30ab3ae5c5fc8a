"""Community: members, votes, comments, moderation, and digest subscribers.

Papers gain ``member_votes`` and ``comment_count`` (kept in step in the same transaction as
each vote or comment, so lists need no aggregate) and ``hidden_at`` (hidden by an admin).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("papers") as batch:
        batch.add_column(sa.Column("member_votes", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("comment_count", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("hidden_at", sa.DateTime))
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(40), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_table(
        "votes",
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "paper_id",
            sa.String(64),
            sa.ForeignKey("papers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "paper_id", name="pk_votes"),
    )
    op.create_index("ix_votes_paper_id", "votes", ["paper_id"])
    op.create_table(
        "comments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "paper_id",
            sa.String(64),
            sa.ForeignKey("papers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("hidden_at", sa.DateTime),
        sa.PrimaryKeyConstraint("id", name="pk_comments"),
    )
    op.create_index("ix_comments_paper_id", "comments", ["paper_id"])
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),  # pending, confirmed, unsubscribed
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subscribers"),
        sa.UniqueConstraint("email", name="uq_subscribers_email"),
    )


def downgrade() -> None:
    op.drop_table("subscribers")
    op.drop_table("comments")
    op.drop_table("votes")
    op.drop_table("users")
    with op.batch_alter_table("papers") as batch:
        batch.drop_column("hidden_at")
        batch.drop_column("comment_count")
        batch.drop_column("member_votes")
