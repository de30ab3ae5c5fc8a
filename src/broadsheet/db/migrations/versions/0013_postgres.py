"""PostgreSQL as a first-class store: its keyword index, its vector index, shared writers' state.

Each part is created only on the engine that uses it; SQLite keeps FTS5 and its vector files.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _on_postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


KEYWORD_INDEX_SQL = [
    """CREATE TABLE keyword_terms (
        id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        term text COLLATE "C" NOT NULL UNIQUE)""",
    # the paper's length rides along, so scoring reads the query terms' postings alone
    """CREATE TABLE keyword_postings (
        term_id integer NOT NULL,
        paper_seq integer NOT NULL,
        tf smallint NOT NULL,
        length integer NOT NULL,
        PRIMARY KEY (term_id, paper_seq))""",
    # which terms each paper has, so it can be taken out of the postings by their key
    """CREATE TABLE keyword_docs (
        paper_seq integer PRIMARY KEY,
        length integer NOT NULL,
        term_ids integer[] NOT NULL)""",
    # collection totals in a few rows, each importer adding to the one of its process id
    """CREATE TABLE keyword_stats (
        shard smallint PRIMARY KEY,
        docs bigint NOT NULL DEFAULT 0,
        total_length bigint NOT NULL DEFAULT 0)""",
    "INSERT INTO keyword_stats (shard) SELECT generate_series(0, 15)",
    """CREATE FUNCTION keyword_forget(seqs integer[]) RETURNS void LANGUAGE sql AS $$
        DELETE FROM keyword_postings p USING keyword_docs d
        WHERE d.paper_seq = ANY(seqs) AND p.paper_seq = d.paper_seq
          AND p.term_id = ANY(d.term_ids);
        WITH gone AS (
            DELETE FROM keyword_docs WHERE paper_seq = ANY(seqs) RETURNING length
        )
        UPDATE keyword_stats SET docs = docs - (SELECT count(*) FROM gone),
            total_length = total_length - (SELECT coalesce(sum(length), 0) FROM gone)
        WHERE shard = pg_backend_pid() % 16;
    $$""",
    """CREATE FUNCTION keyword_forget_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM keyword_forget(ARRAY(SELECT seq FROM deleted));
            RETURN NULL;
        END
    $$""",
    """CREATE TRIGGER papers_keyword_delete AFTER DELETE ON papers
        REFERENCING OLD TABLE AS deleted
        FOR EACH STATEMENT EXECUTE FUNCTION keyword_forget_deleted()""",
]


def _keyword_index_up() -> None:
    """BM25 postings with the collection statistics they need (PostgreSQL); 0014 regroups the
    postings into blocks and indexes the papers already stored."""
    for statement in KEYWORD_INDEX_SQL:
        op.execute(statement)


def _keyword_index_down() -> None:
    op.execute("DROP TRIGGER IF EXISTS papers_keyword_delete ON papers")
    op.execute("DROP FUNCTION IF EXISTS keyword_forget_deleted()")
    op.execute("DROP FUNCTION IF EXISTS keyword_forget(integer[])")
    for name in ("keyword_stats", "keyword_docs", "keyword_postings", "keyword_terms"):
        op.execute(f"DROP TABLE IF EXISTS {name}")


def _vector_index_up() -> None:
    """pgvector columns per dimension with HNSW indexes (PostgreSQL), filled from the bytes.

    The table of the default model's 384 dimensions is made here; another dimension's is made
    when its first vector is stored. Vectors already stored as bytes are copied in.
    """
    from broadsheet.search.vector_pgvector import backfill, create_dimension, require_pgvector

    bind = op.get_bind()
    installed = bind.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'vector'").scalar()
    if installed is None:
        try:
            with bind.begin_nested():
                bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
        except sa.exc.DBAPIError as exc:
            database = bind.exec_driver_sql("SELECT current_database()").scalar()
            raise RuntimeError(
                "Broadsheet needs the pgvector extension, and this database user may not create "
                "it. Ask the database administrator to install pgvector on the server and run, "
                f'as a superuser: psql -d {database} -c "CREATE EXTENSION IF NOT EXISTS vector;"'
                f" — then run the migration again. ({exc.orig})"
            ) from exc
    require_pgvector(bind)
    create_dimension(bind, 384)
    backfill(bind)


def _vector_index_down() -> None:
    from broadsheet.search.vector_pgvector import drop_dimensions

    drop_dimensions(op.get_bind())


def _shared_state_up() -> None:
    """What many writers on many machines share: the version counters, the site's secret.

    The counter's shard rows (db/version.py) are made by the first write to each, so a fresh
    store has row 1 only, whatever its engine.
    """
    op.create_table(
        "site_secrets",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_site_secrets"),
    )


def _shared_state_down() -> None:
    # older code reads row 1 alone: the total moves there, so the counter never goes back
    op.execute(
        "UPDATE store_version SET version = (SELECT sum(version) FROM store_version) WHERE id = 1"
    )
    op.execute("DELETE FROM store_version WHERE id > 1")
    op.drop_table("site_secrets")


def upgrade() -> None:
    _shared_state_up()
    if _on_postgres():
        _keyword_index_up()
        _vector_index_up()


def downgrade() -> None:
    if _on_postgres():
        _vector_index_down()
        _keyword_index_down()
    _shared_state_down()


__all__ = ["sa"]
