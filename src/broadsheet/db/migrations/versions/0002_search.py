"""Search: an FTS5 index over titles and abstracts kept in step by triggers; paper vectors.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

FTS_SQLITE = [
    # External content: the index stores no text of its own; papers.seq is its rowid.
    """CREATE VIRTUAL TABLE papers_fts USING fts5(
        title, abstract, content='papers', content_rowid='seq',
        tokenize='porter unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER papers_fts_insert AFTER INSERT ON papers BEGIN
        INSERT INTO papers_fts(rowid, title, abstract) VALUES (new.seq, new.title, new.abstract);
    END""",
    """CREATE TRIGGER papers_fts_delete AFTER DELETE ON papers BEGIN
        INSERT INTO papers_fts(papers_fts, rowid, title, abstract)
        VALUES ('delete', old.seq, old.title, old.abstract);
    END""",
    """CREATE TRIGGER papers_fts_update AFTER UPDATE OF title, abstract ON papers BEGIN
        INSERT INTO papers_fts(papers_fts, rowid, title, abstract)
        VALUES ('delete', old.seq, old.title, old.abstract);
        INSERT INTO papers_fts(rowid, title, abstract) VALUES (new.seq, new.title, new.abstract);
    END""",
    "INSERT INTO papers_fts(papers_fts) VALUES ('rebuild')",
]


def upgrade() -> None:
    op.create_table(
        "paper_vectors",
        sa.Column("paper_seq", sa.Integer, nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("text_hash", sa.String(32), nullable=False),
        sa.Column("dim", sa.Integer, nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("paper_seq", "model", name="pk_paper_vectors"),
        sa.ForeignKeyConstraint(
            ["paper_seq"],
            ["papers.seq"],
            ondelete="CASCADE",
            name="fk_paper_vectors_paper_seq_papers",
        ),
    )
    if op.get_bind().dialect.name == "sqlite":
        for statement in FTS_SQLITE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("papers_fts_insert", "papers_fts_delete", "papers_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS papers_fts")
    op.drop_table("paper_vectors")
