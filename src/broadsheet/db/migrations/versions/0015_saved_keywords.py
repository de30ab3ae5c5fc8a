"""SQLite: what a large store's saved keyword index holds, and the papers changed since.

``keyword_saved`` has at most one row: the highest paper seq the saved index holds, the last
change it took in, and how many papers and terms it holds (for scoring papers changed since).
``keyword_changes`` logs each paper whose title or abstract changed, or that was deleted, by
trigger; searches treat the saved index's copy of those papers as stale until the next save
takes the change in and clears the log. Nothing changes on PostgreSQL, whose keyword
postings live in the store.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

SQLITE = [
    """CREATE TABLE IF NOT EXISTS keyword_saved (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        last_seq INTEGER NOT NULL,
        last_change INTEGER NOT NULL,
        generation TEXT NOT NULL,
        documents INTEGER NOT NULL DEFAULT 0,
        total_length INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS keyword_changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        seq INTEGER NOT NULL
    )""",
    """CREATE TRIGGER IF NOT EXISTS keyword_changes_update AFTER UPDATE OF title, abstract ON papers
    WHEN (old.title IS NOT new.title OR old.abstract IS NOT new.abstract)
        AND EXISTS (SELECT 1 FROM keyword_saved) BEGIN
        INSERT INTO keyword_changes (seq) VALUES (old.seq);
    END""",
    """CREATE TRIGGER IF NOT EXISTS keyword_changes_delete AFTER DELETE ON papers
    WHEN EXISTS (SELECT 1 FROM keyword_saved) BEGIN
        INSERT INTO keyword_changes (seq) VALUES (old.seq);
    END""",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("keyword_changes_update", "keyword_changes_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS keyword_changes")
        op.execute("DROP TABLE IF EXISTS keyword_saved")
