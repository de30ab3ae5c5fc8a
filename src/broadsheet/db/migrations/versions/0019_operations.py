"""Operations: the runs of the worker's jobs, the alerts sent for late ones, and an audit log
of what admins do.

- ``job_runs``: one row per run of a job (``harvest:cs.CL``, ``index``, ``digest:daily``...),
  written when it starts and again when it ends, with its outcome, counts and error.
- ``job_alerts``: a late job's current episode, so its admins are mailed once per episode.
- ``admin_audit``: who did what, when, from the admin pages; the actor's id goes empty when
  their account is deleted.

Ids of runs and audit entries are never reused (SQLite ``AUTOINCREMENT``, as 0018 gave the
tables before them).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "job_runs" not in existing:  # a store stamped one behind may have them already
        op.create_table(
            "job_runs",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("job", sa.String(100), nullable=False),
            sa.Column("started_at", sa.DateTime, nullable=False),
            sa.Column("finished_at", sa.DateTime),
            sa.Column("outcome", sa.String(16), nullable=False),
            sa.Column("counts", sa.JSON, nullable=False),
            sa.Column("error", sa.Text),
            sa.Column("worker", sa.String(300), nullable=False),
            sqlite_autoincrement=True,
        )
        op.create_index("ix_job_runs_job_started_at", "job_runs", ["job", "started_at"])
    if "job_alerts" not in existing:
        op.create_table(
            "job_alerts",
            sa.Column("job", sa.String(100), nullable=False),
            sa.Column("late_since", sa.DateTime, nullable=False),
            sa.Column("claimed_at", sa.DateTime),
            sa.Column("mailed_at", sa.DateTime),
            sa.PrimaryKeyConstraint("job", name="pk_job_alerts"),
        )
    if "admin_audit" not in existing:
        op.create_table(
            "admin_audit",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("at", sa.DateTime, nullable=False),
            sa.Column("actor_id", sa.Integer),
            sa.Column("action", sa.String(64), nullable=False),
            sa.Column("target", sa.Text, nullable=False),
            sa.Column("detail", sa.JSON, nullable=False),
            sa.ForeignKeyConstraint(
                ["actor_id"],
                ["users.id"],
                ondelete="SET NULL",
                name="fk_admin_audit_actor_id_users",
            ),
            sqlite_autoincrement=True,
        )
        op.create_index("ix_admin_audit_at", "admin_audit", ["at"])
        op.create_index("ix_admin_audit_actor_id", "admin_audit", ["actor_id"])


def downgrade() -> None:
    op.drop_table("admin_audit")
    op.drop_table("job_alerts")
    op.drop_table("job_runs")
