"""A subscription can belong to a member (managed in their settings; "for you" uses votes).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("user_id", sa.Integer))
        batch.create_foreign_key(
            "fk_subscribers_user_id_users", "users", ["user_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_subscribers_user_id", ["user_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_index("ix_subscribers_user_id")
        batch.drop_constraint("fk_subscribers_user_id_users", type_="foreignkey")
        batch.drop_column("user_id")
