"""The admin dashboard: members an admin disabled, members' reports of comments, and the
site's settings an admin changes while it runs.

- ``users.disabled_at``: when an admin disabled the account (it cannot sign in; every session
  and token ended then). Empty for every account until then.
- ``comment_reports``: one report per member and comment ("report this comment"), open until
  an admin hides the comment or dismisses the report. The reporter's id goes empty when their
  account is deleted; a deleted comment takes its reports with it.
- ``site_settings``: one row per setting an admin changed on the admin pages (whether anyone
  may sign up, a notice on every page); a setting without a row has its default.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    if "disabled_at" not in {c["name"] for c in inspector.get_columns("users")}:
        op.add_column("users", sa.Column("disabled_at", sa.DateTime))
    if "comment_reports" not in inspector.get_table_names():
        op.create_table(
            "comment_reports",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("comment_id", sa.Integer, nullable=False),
            sa.Column("reporter_id", sa.Integer),
            sa.Column("reason", sa.String(500), nullable=False),
            sa.Column("created_at", sa.DateTime, nullable=False),
            sa.Column("resolved_at", sa.DateTime),
            sa.Column("resolved_by", sa.Integer),
            sa.Column("outcome", sa.String(16)),  # hidden, dismissed
            sa.ForeignKeyConstraint(
                ["comment_id"],
                ["comments.id"],
                ondelete="CASCADE",
                name="fk_comment_reports_comment_id_comments",
            ),
            sa.ForeignKeyConstraint(
                ["reporter_id"],
                ["users.id"],
                ondelete="SET NULL",
                name="fk_comment_reports_reporter_id_users",
            ),
            sa.ForeignKeyConstraint(
                ["resolved_by"],
                ["users.id"],
                ondelete="SET NULL",
                name="fk_comment_reports_resolved_by_users",
            ),
            sa.UniqueConstraint(
                "comment_id", "reporter_id", name="uq_comment_reports_comment_reporter"
            ),
            sqlite_autoincrement=True,
        )
        op.create_index("ix_comment_reports_open", "comment_reports", ["resolved_at", "id"])
        op.create_index("ix_comment_reports_reporter_id", "comment_reports", ["reporter_id"])
        op.create_index("ix_comment_reports_resolved_by", "comment_reports", ["resolved_by"])

    if "site_settings" not in inspector.get_table_names():
        op.create_table(
            "site_settings",
            sa.Column("key", sa.String(64), primary_key=True),
            sa.Column("value", sa.JSON, nullable=False),
            sa.Column("updated_at", sa.DateTime, nullable=False),
            sa.Column("updated_by", sa.Integer),
            sa.ForeignKeyConstraint(
                ["updated_by"],
                ["users.id"],
                ondelete="SET NULL",
                name="fk_site_settings_updated_by_users",
            ),
        )
        op.create_index("ix_site_settings_updated_by", "site_settings", ["updated_by"])


def downgrade() -> None:
    op.drop_table("site_settings")
    op.drop_table("comment_reports")
    # SQLite (3.35+) drops a column in place: no rebuild of users, whose expression index a
    # batch rebuild would lose
    op.execute("ALTER TABLE users DROP COLUMN disabled_at")
