"""The paper store: papers, authors, categories, organisations, feed entries, import runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("slug", sa.String(200), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("full_name", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_organisations"),
        sa.UniqueConstraint("slug", name="uq_organisations_slug"),
    )
    op.create_table(
        "papers",
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("title_raw", sa.Text, nullable=False),
        sa.Column("abstract", sa.Text, nullable=False),
        sa.Column("abstract_raw", sa.Text, nullable=False),
        sa.Column("authors", sa.JSON, nullable=False),
        sa.Column("primary_category", sa.String(64)),
        sa.Column("categories", sa.Text, nullable=False),
        sa.Column("organisation_id", sa.Integer),
        sa.Column("published_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime),
        sa.Column("comment", sa.Text),
        sa.Column("doi", sa.Text),
        sa.Column("journal_ref", sa.Text),
        sa.Column("report_no", sa.Text),
        sa.Column("license", sa.Text),
        sa.Column("links", sa.JSON, nullable=False),
        sa.Column("upvotes", sa.Integer, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("record_hash", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("modified_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_papers"),
        sa.UniqueConstraint("id", name="uq_papers_id"),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name="fk_papers_organisation_id_organisations",
        ),
    )
    op.create_index("ix_papers_published_at", "papers", ["published_at"])
    op.create_index("ix_papers_primary_category", "papers", ["primary_category"])
    op.create_index(
        "ix_papers_organisation_id",
        "papers",
        ["organisation_id"],
        sqlite_where=sa.text("organisation_id IS NOT NULL"),
        postgresql_where=sa.text("organisation_id IS NOT NULL"),
    )
    op.create_table(
        "authors",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_authors"),
        sa.UniqueConstraint("name", name="uq_authors_name"),
    )
    op.create_table(
        "paper_authors",
        sa.Column("paper_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("author_id", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("paper_id", "position", name="pk_paper_authors"),
        sa.ForeignKeyConstraint(
            ["paper_id"],
            ["papers.id"],
            ondelete="CASCADE",
            name="fk_paper_authors_paper_id_papers",
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["authors.id"], name="fk_paper_authors_author_id_authors"
        ),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_paper_authors_author_id", "paper_authors", ["author_id"])
    op.create_table(
        "paper_categories",
        sa.Column("paper_id", sa.String(64), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("paper_id", "category", name="pk_paper_categories"),
        sa.ForeignKeyConstraint(
            ["paper_id"],
            ["papers.id"],
            ondelete="CASCADE",
            name="fk_paper_categories_paper_id_papers",
        ),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_paper_categories_category", "paper_categories", ["category"])
    op.create_table(
        "feed_entries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("paper_id", sa.String(64), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("submitted_by", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feed_entries"),
        sa.ForeignKeyConstraint(
            ["paper_id"],
            ["papers.id"],
            ondelete="CASCADE",
            name="fk_feed_entries_paper_id_papers",
        ),
        sa.UniqueConstraint("paper_id", "day", name="uq_feed_entries_paper_day"),
    )
    op.create_index("ix_feed_entries_day", "feed_entries", ["day"])
    op.create_table(
        "import_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("file_size", sa.BigInteger, nullable=False),
        sa.Column("file_mtime_ns", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resume_offset", sa.BigInteger, nullable=False),
        sa.Column("resume_line", sa.BigInteger, nullable=False),
        sa.Column("read", sa.Integer, nullable=False),
        sa.Column("added", sa.Integer, nullable=False),
        sa.Column("updated", sa.Integer, nullable=False),
        sa.Column("unchanged", sa.Integer, nullable=False),
        sa.Column("skipped", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.PrimaryKeyConstraint("id", name="pk_import_runs"),
    )
    op.create_index("ix_import_runs_path", "import_runs", ["path"])


def downgrade() -> None:
    for table in (
        "import_runs",
        "feed_entries",
        "paper_categories",
        "paper_authors",
        "authors",
        "papers",
        "organisations",
    ):
        op.drop_table(table)
