"""A member's library: saved papers (read/unread, a private note), named collections, and the
papers they dismissed ("not interested"), the authors and organisations they follow, their
API tokens, and when the account's email address was verified.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "saved_papers" not in existing:  # a store stamped one behind may have them already
        op.create_table(
            "saved_papers",
            sa.Column("user_id", sa.Integer, nullable=False),
            sa.Column("paper_id", sa.String(64), nullable=False),
            sa.Column("saved_at", sa.DateTime, nullable=False),
            sa.Column("read_at", sa.DateTime),
            sa.Column("note", sa.Text),
            sa.Column("note_updated_at", sa.DateTime),
            sa.PrimaryKeyConstraint("user_id", "paper_id", name="pk_saved_papers"),
            sa.ForeignKeyConstraint(
                ["user_id"], ["users.id"], ondelete="CASCADE", name="fk_saved_papers_user_id_users"
            ),
            sa.ForeignKeyConstraint(
                ["paper_id"],
                ["papers.id"],
                ondelete="CASCADE",
                name="fk_saved_papers_paper_id_papers",
            ),
        )
        op.create_index("ix_saved_papers_paper_id", "saved_papers", ["paper_id"])
    if "collections" not in existing:
        op.create_table(
            "collections",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("user_id", sa.Integer, nullable=False),
            sa.Column("name", sa.String(80), nullable=False),
            sa.Column("visibility", sa.String(8), nullable=False),
            sa.Column("share_token", sa.String(32), nullable=False),
            sa.Column("created_at", sa.DateTime, nullable=False),
            sa.ForeignKeyConstraint(
                ["user_id"], ["users.id"], ondelete="CASCADE", name="fk_collections_user_id_users"
            ),
            sa.UniqueConstraint("share_token", name="uq_collections_share_token"),
        )
        op.create_index(
            "uq_collections_user_name",
            "collections",
            ["user_id", sa.text("lower(name)")],
            unique=True,
        )
    if "collection_papers" not in existing:
        op.create_table(
            "collection_papers",
            sa.Column("collection_id", sa.Integer, nullable=False),
            sa.Column("paper_id", sa.String(64), nullable=False),
            sa.Column("added_at", sa.DateTime, nullable=False),
            sa.PrimaryKeyConstraint("collection_id", "paper_id", name="pk_collection_papers"),
            sa.ForeignKeyConstraint(
                ["collection_id"],
                ["collections.id"],
                ondelete="CASCADE",
                name="fk_collection_papers_collection_id_collections",
            ),
            sa.ForeignKeyConstraint(
                ["paper_id"],
                ["papers.id"],
                ondelete="CASCADE",
                name="fk_collection_papers_paper_id_papers",
            ),
        )
        op.create_index("ix_collection_papers_paper_id", "collection_papers", ["paper_id"])

    if "dismissed_papers" not in existing:
        op.create_table(
            "dismissed_papers",
            sa.Column("user_id", sa.Integer, nullable=False),
            sa.Column("paper_id", sa.String(64), nullable=False),
            sa.Column("dismissed_at", sa.DateTime, nullable=False),
            sa.PrimaryKeyConstraint("user_id", "paper_id", name="pk_dismissed_papers"),
            sa.ForeignKeyConstraint(
                ["user_id"],
                ["users.id"],
                ondelete="CASCADE",
                name="fk_dismissed_papers_user_id_users",
            ),
            sa.ForeignKeyConstraint(
                ["paper_id"],
                ["papers.id"],
                ondelete="CASCADE",
                name="fk_dismissed_papers_paper_id_papers",
            ),
        )

    for table, column, target in (
        ("followed_authors", "author_id", "authors"),
        ("followed_organisations", "organisation_id", "organisations"),
    ):
        if table in existing:
            continue
        op.create_table(
            table,
            sa.Column("user_id", sa.Integer, nullable=False),
            sa.Column(column, sa.Integer, nullable=False),
            sa.Column("created_at", sa.DateTime, nullable=False),
            sa.PrimaryKeyConstraint("user_id", column, name=f"pk_{table}"),
            sa.ForeignKeyConstraint(
                ["user_id"], ["users.id"], ondelete="CASCADE", name=f"fk_{table}_user_id_users"
            ),
            sa.ForeignKeyConstraint(
                [column], [f"{target}.id"], ondelete="CASCADE", name=f"fk_{table}_{column}_{target}"
            ),
        )

    if "api_tokens" not in existing:
        op.create_table(
            "api_tokens",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("user_id", sa.Integer, nullable=False),
            sa.Column("name", sa.String(80), nullable=False),
            sa.Column("token_hash", sa.String(64), nullable=False),
            sa.Column("created_at", sa.DateTime, nullable=False),
            sa.Column("last_used_at", sa.DateTime),
            sa.ForeignKeyConstraint(
                ["user_id"], ["users.id"], ondelete="CASCADE", name="fk_api_tokens_user_id_users"
            ),
            sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
        )
        op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("users")}
    if "email_verified_at" not in columns:
        # a plain ALTER TABLE: recreating ``users`` on SQLite would cascade its deletion
        op.add_column("users", sa.Column("email_verified_at", sa.DateTime))


def downgrade() -> None:
    op.drop_column("users", "email_verified_at")
    op.drop_table("api_tokens")
    op.drop_table("followed_organisations")
    op.drop_table("followed_authors")
    op.drop_table("dismissed_papers")
    op.drop_table("collection_papers")
    op.drop_table("collections")
    op.drop_table("saved_papers")
