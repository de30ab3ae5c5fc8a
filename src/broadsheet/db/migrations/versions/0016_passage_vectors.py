"""Passage vectors: each paper's abstract embedded sentence by sentence, beside its one vector.

One row per paper and model holds all its passages' vectors as one float16 matrix, with the
hash of the passages they were made from. Search reads them for its first candidates only,
so they need no index of their own. ``broadsheet index`` embeds the papers already stored.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("passage_vectors"):
        return  # a store stamped one behind: it has it already (and may be read-only)
    op.create_table(
        "passage_vectors",
        sa.Column("paper_seq", sa.Integer, nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("text_hash", sa.String(32), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("dim", sa.Integer, nullable=False),
        sa.Column("vectors", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("paper_seq", "model", name="pk_passage_vectors"),
        sa.ForeignKeyConstraint(
            ["paper_seq"],
            ["papers.seq"],
            ondelete="CASCADE",
            name="fk_passage_vectors_paper_seq_papers",
        ),
    )


def downgrade() -> None:
    op.drop_table("passage_vectors")
