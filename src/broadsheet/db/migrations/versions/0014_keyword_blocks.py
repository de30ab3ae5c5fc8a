"""PostgreSQL's keyword postings in blocks: one row per term per run of up to 1,024 papers,
holding their sequence numbers, term frequencies and lengths as arrays. Imports write a
fraction of the rows they wrote with one row per posting, and scoring reads fewer.

The papers already stored are indexed afresh. Nothing changes on SQLite.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# $1, not its name: inside the body, "seqs" would mean keyword_blocks.seqs
FORGET_POSTINGS = """
CREATE OR REPLACE FUNCTION keyword_forget(seqs integer[]) RETURNS void LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM keyword_docs WHERE paper_seq = ANY($1)
        RETURNING paper_seq, block, length, term_ids
    ), counted AS (
        UPDATE keyword_stats SET docs = docs - (SELECT count(*) FROM gone),
            total_length = total_length - (SELECT coalesce(sum(length), 0) FROM gone)
        WHERE shard = pg_backend_pid() % 16
    ), touched AS (
        SELECT DISTINCT block, unnest(term_ids) AS term_id FROM gone
    ), kept AS (
        SELECT b.term_id, b.block,
               array_agg(u.seq ORDER BY u.n) FILTER (WHERE u.seq <> ALL($1)) AS seqs,
               array_agg(u.tf ORDER BY u.n) FILTER (WHERE u.seq <> ALL($1)) AS tfs,
               array_agg(u.length ORDER BY u.n) FILTER (WHERE u.seq <> ALL($1)) AS lengths
        FROM keyword_blocks b JOIN touched USING (term_id, block)
        CROSS JOIN LATERAL unnest(b.seqs, b.tfs, b.lengths) WITH ORDINALITY
            AS u(seq, tf, length, n)
        GROUP BY b.term_id, b.block
    ), emptied AS (
        DELETE FROM keyword_blocks b USING kept
        WHERE kept.seqs IS NULL AND b.term_id = kept.term_id AND b.block = kept.block
    )
    UPDATE keyword_blocks b
    SET seqs = kept.seqs, tfs = kept.tfs, lengths = kept.lengths
    FROM kept
    WHERE kept.seqs IS NOT NULL AND b.term_id = kept.term_id AND b.block = kept.block;
$$"""

FORGET_ROWS = """
CREATE OR REPLACE FUNCTION keyword_forget(seqs integer[]) RETURNS void LANGUAGE sql AS $$
    DELETE FROM keyword_postings p USING keyword_docs d
    WHERE d.paper_seq = ANY(seqs) AND p.paper_seq = d.paper_seq
      AND p.term_id = ANY(d.term_ids);
    WITH gone AS (
        DELETE FROM keyword_docs WHERE paper_seq = ANY(seqs) RETURNING length
    )
    UPDATE keyword_stats SET docs = docs - (SELECT count(*) FROM gone),
        total_length = total_length - (SELECT coalesce(sum(length), 0) FROM gone)
    WHERE shard = pg_backend_pid() % 16;
$$"""


def _on_postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if not _on_postgres():
        return
    from broadsheet.search.keyword_index import PostgresKeywordIndex
    from broadsheet.search.vector_pgvector import require_pgvector

    require_pgvector(op.get_bind())  # stores made before the version was checked
    op.execute("DROP TABLE keyword_postings")
    op.execute("TRUNCATE keyword_docs")
    op.execute("ALTER TABLE keyword_docs ADD COLUMN block integer NOT NULL")
    op.execute("CREATE SEQUENCE keyword_block_ids AS integer")
    op.execute(
        """CREATE TABLE keyword_blocks (
            term_id integer NOT NULL,
            block integer NOT NULL,
            seqs integer[] NOT NULL,
            tfs integer[] NOT NULL,
            lengths integer[] NOT NULL,
            PRIMARY KEY (term_id, block))"""
    )
    op.execute(FORGET_POSTINGS)
    PostgresKeywordIndex().rebuild(op.get_bind())


def downgrade() -> None:
    if not _on_postgres():
        return
    op.execute(
        """CREATE TABLE keyword_postings (
            term_id integer NOT NULL,
            paper_seq integer NOT NULL,
            tf smallint NOT NULL,
            length integer NOT NULL,
            PRIMARY KEY (term_id, paper_seq))"""
    )
    op.execute(
        """INSERT INTO keyword_postings
        SELECT b.term_id, u.seq, u.tf, u.length
        FROM keyword_blocks b, unnest(b.seqs, b.tfs, b.lengths) AS u(seq, tf, length)"""
    )
    op.execute(FORGET_ROWS)
    op.execute("DROP TABLE keyword_blocks")
    op.execute("DROP SEQUENCE keyword_block_ids")
    op.execute("ALTER TABLE keyword_docs DROP COLUMN block")
