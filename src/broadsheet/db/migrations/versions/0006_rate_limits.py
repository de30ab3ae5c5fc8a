"""Rate-limit counters shared by every worker process; usernames unique in any letter case.

One row per limited key (an action and who does it) per fixed window; each attempt bumps the
row's count in one atomic upsert, so limits hold across processes as well as threads.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("window_start", sa.BigInteger, nullable=False),  # epoch seconds
        sa.Column("hits", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("key", "window_start", name="pk_rate_limits"),
    )
    op.create_index("ix_rate_limits_window_start", "rate_limits", ["window_start"])
    op.create_index("uq_users_username_lower", "users", [sa.text("lower(username)")], unique=True)


def downgrade() -> None:
    op.drop_index("uq_users_username_lower", "users")
    op.drop_table("rate_limits")
