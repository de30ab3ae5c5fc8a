"""The PostgreSQL vector index: pgvector columns with HNSW indexes, searched in the database.

Each vector dimension has its own table, ``paper_embeddings_<dim>`` (paper, model, a
``vector(<dim>)`` column with an HNSW index on cosine distance), kept beside the float32 bytes
of ``paper_vectors``: a row here belongs to the row there (deleted with it) and is written in
the same transaction. Migration 0013 creates the 384-dimension table (the default model's) and
fills it from the stored bytes; another dimension's table is created the first time a vector of
that size is stored. A search reads only its neighbours: no process holds the vectors.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    func,
    select,
    text,
)

from broadsheet.db.membership import is_one_of
from broadsheet.db.schema import paper_vectors, papers
from broadsheet.search.vector_index import Neighbours, vectors_of

MAX_DIM = 2000  # pgvector's HNSW indexes take vectors of at most 2,000 dimensions
# HNSW candidate list per search: at least the neighbours asked for (pgvector returns no more
# than ef_search rows from an index scan), twice that for recall, within pgvector's 1,000
MIN_EF_SEARCH, MAX_EF_SEARCH = 100, 1000
COUNT_TTL = 10.0  # seconds a search may reuse the count of a model's vectors
BACKFILL_CHUNK = 2000
# vectors missing from a table above which backfill builds its HNSW index afresh after copying
# instead of growing it row by row (bench/vector_engines.py: ~230 inserts/s into a live index)
REBUILD_FROM = 10_000
BUILD_MEMORY = "512MB"  # a build whose graph fits in maintenance_work_mem avoids spilling

_metadata = MetaData()
_tables: dict[int, Table] = {}
_tables_lock = threading.Lock()


# HNSW indexes came in pgvector 0.5; iterative scans, which filtered searches rely on, in 0.8
PGVECTOR_NEEDED = (0, 8, 0)


def version_tuple(version: str) -> tuple[int, ...]:
    """``"0.8.1"`` as ``(0, 8, 1)``; anything after the numbers (``-beta``) is ignored."""
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def pgvector_problem(installed: str, available: str | None) -> str | None:
    """What the administrator must do when the database's pgvector is older than needed
    (``installed``; ``available``: the newest the server has files for), or None."""
    needed = ".".join(map(str, PGVECTOR_NEEDED))
    if version_tuple(installed) >= PGVECTOR_NEEDED:
        return None
    if available is not None and version_tuple(available) >= PGVECTOR_NEEDED:
        return (
            f"Broadsheet needs pgvector {needed} or newer; this database has {installed}, and the "
            f"server has {available}. Run, as a superuser or the extension's owner: "
            '"ALTER EXTENSION vector UPDATE;" — then run the migration again.'
        )
    return (
        f"Broadsheet needs pgvector {needed} or newer; this database has {installed}, and the "
        f"server has nothing newer. Install pgvector {needed} or newer on the server (Debian "
        "and Ubuntu: postgresql-NN-pgvector from the PostgreSQL project's apt repository, "
        'apt.postgresql.org), then run "ALTER EXTENSION vector UPDATE;" as a superuser and '
        "run the migration again."
    )


def require_pgvector(connection: Connection) -> None:
    """Stop with what to do when the database's pgvector is missing or too old."""
    installed = connection.exec_driver_sql(
        "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
    ).scalar()
    if installed is None:
        raise RuntimeError(
            'Broadsheet needs the pgvector extension: run, as a superuser, "CREATE EXTENSION '
            'vector;" in this database, then run the migration again.'
        )
    available = connection.exec_driver_sql(
        "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
    ).scalar()
    problem = pgvector_problem(installed, available)
    if problem is not None:
        raise RuntimeError(problem)


def missing_pgvector(connection: Connection) -> str | None:
    """What stops vectors being stored and searched in this database, with what to do, or None.

    A store restored by a user who may not create extensions has every table but the pgvector
    ones, and its migrations stand at the newest revision all the same.
    """
    installed = connection.exec_driver_sql(
        "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
    ).scalar()
    if installed is not None:
        available = connection.exec_driver_sql(
            "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
        ).scalar()
        return pgvector_problem(installed, available)
    database = connection.exec_driver_sql("SELECT current_database()").scalar()
    return (
        "this database lacks the pgvector extension, so vectors can be neither stored nor "
        "searched. Run, as a superuser: "
        f'psql -d {database} -c "CREATE EXTENSION vector;" — then `broadsheet index`.'
    )


def ef_search(limit: int) -> int:
    """The HNSW candidate list for a search asking for ``limit`` neighbours."""
    return min(MAX_EF_SEARCH, max(MIN_EF_SEARCH, 2 * limit))


def embeddings_table(dim: int) -> Table:
    """The table of ``dim``-dimensional vectors (its SQLAlchemy description; see create)."""
    if not 0 < dim <= MAX_DIM:
        raise ValueError(f"pgvector's HNSW index takes 1 to {MAX_DIM} dimensions, not {dim}")
    with _tables_lock:
        if dim not in _tables:
            _tables[dim] = Table(
                f"paper_embeddings_{dim}",
                _metadata,
                Column("paper_seq", Integer, primary_key=True),
                Column("model", String(200), primary_key=True),
                Column("embedding", Vector(dim), nullable=False),
            )
        return _tables[dim]


def create_dimension(connection: Connection, dim: int, force_index: bool = False) -> Table:
    """Create the table and HNSW index of ``dim``-dimensional vectors unless they exist.

    An advisory lock per dimension lets two ``index`` processes meet a new model at once.
    """
    table = embeddings_table(dim)
    name = table.name
    exists = connection.execute(text("SELECT to_regclass(:name)"), {"name": name}).scalar()
    if exists is not None and not force_index:
        return table
    connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})
    connection.execute(
        text(
            f"CREATE TABLE IF NOT EXISTS {name} ("
            " paper_seq integer NOT NULL,"
            " model varchar(200) NOT NULL,"
            f" embedding vector({dim}) NOT NULL,"
            f" CONSTRAINT pk_{name} PRIMARY KEY (paper_seq, model),"
            f" CONSTRAINT fk_{name}_paper_vectors FOREIGN KEY (paper_seq, model)"
            "  REFERENCES paper_vectors (paper_seq, model) ON DELETE CASCADE)"
        )
    )
    connection.execute(
        text(
            f"CREATE INDEX IF NOT EXISTS ix_{name}_hnsw ON {name}"
            " USING hnsw (embedding vector_cosine_ops)"
        )
    )
    return table


def _dimensions(connection: Connection) -> list[int]:
    """The dimensions that have a table."""
    names = connection.execute(
        text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'paper\\_embeddings\\_%'")
    ).scalars()
    return sorted(int(name.rsplit("_", 1)[1]) for name in names)


def drop_dimensions(connection: Connection) -> None:
    """Drop every dimension's table (the bytes in ``paper_vectors`` stay)."""
    for dim in _dimensions(connection):
        connection.execute(text(f"DROP TABLE IF EXISTS paper_embeddings_{dim}"))


def backfill(connection: Connection, chunk: int = BACKFILL_CHUNK) -> int:
    """Copy stored vectors that have no pgvector row yet into their dimension's table.

    Run by the migration (stores upgraded with vectors), and safe to run again, e.g. after rows
    were copied into ``paper_vectors`` by other means. Returns how many rows it wrote.
    """
    written = 0
    dims = connection.execute(select(paper_vectors.c.dim).distinct()).scalars().all()
    for dim in dims:
        table = create_dimension(connection, dim)
        missing_count = connection.execute(
            select(func.count())
            .select_from(paper_vectors)
            .outerjoin(
                table,
                (table.c.paper_seq == paper_vectors.c.paper_seq)
                & (table.c.model == paper_vectors.c.model),
            )
            .where(paper_vectors.c.dim == dim, table.c.paper_seq.is_(None))
        ).scalar_one()
        rebuild = missing_count >= REBUILD_FROM
        if rebuild:
            connection.execute(text(f"DROP INDEX IF EXISTS ix_{table.name}_hnsw"))
        while True:  # each round writes what it found, so the next finds the rest
            missing = connection.execute(
                select(paper_vectors.c.paper_seq, paper_vectors.c.model, paper_vectors.c.vector)
                .outerjoin(
                    table,
                    (table.c.paper_seq == paper_vectors.c.paper_seq)
                    & (table.c.model == paper_vectors.c.model),
                )
                .where(
                    paper_vectors.c.dim == dim,
                    table.c.paper_seq.is_(None),
                )
                .order_by(paper_vectors.c.paper_seq, paper_vectors.c.model)
                .limit(chunk)
            ).all()
            if not missing:
                break
            connection.execute(
                table.insert(),
                [
                    {
                        "paper_seq": seq,
                        "model": model,
                        "embedding": np.frombuffer(blob, dtype=np.float32),
                    }
                    for seq, model, blob in missing
                ],
            )
            written += len(missing)
        if rebuild:
            connection.execute(text(f"SET LOCAL maintenance_work_mem = '{BUILD_MEMORY}'"))
            create_dimension(connection, dim, force_index=True)
            # without statistics the planner reads every row rather than the index until
            # autovacuum gets round to the table
            connection.execute(text(f"ANALYZE {table.name}"))
    return written


_counts: dict[tuple[str, str], tuple[float, int]] = {}


class PgVectorIndex:
    """One model's vectors in pgvector: searched in the database, nothing held here."""

    def __init__(self, engine: Engine, model: str):
        self.engine, self.model = engine, model

    def __len__(self) -> int:
        """Vectors stored for the model, counted at most every few seconds (a count scans).

        None counted is never reused: an index that was empty may be filled at any moment.
        """
        key = (self.engine.url.render_as_string(hide_password=False), self.model)
        now = time.monotonic()
        hit = _counts.get(key)
        if hit is None or now - hit[0] > COUNT_TTL or hit[1] == 0:
            with self.engine.connect() as connection:
                count = connection.execute(
                    select(func.count())
                    .select_from(paper_vectors)
                    .where(paper_vectors.c.model == self.model)
                ).scalar_one()
            hit = _counts[key] = (now, count)
        return hit[1]

    def search(
        self,
        query: np.ndarray,
        limit: int,
        allowed: set[int] | None = None,
        exclude: int | None = None,
        where: Sequence[ColumnElement[bool]] = (),
    ) -> Neighbours:
        if limit <= 0 or (allowed is not None and not allowed):
            return []
        table = embeddings_table(len(query))
        distance = table.c.embedding.cosine_distance(np.asarray(query, dtype=np.float32))
        statement = select(table.c.paper_seq, distance.label("distance")).where(
            table.c.model == self.model
        )
        if exclude is not None:
            statement = statement.where(table.c.paper_seq != exclude)
        if where:
            statement = statement.join(papers, papers.c.seq == table.c.paper_seq).where(*where)
        with self.engine.begin() as connection:
            if (
                connection.execute(text("SELECT to_regclass(:name)"), {"name": table.name}).scalar()
                is None
            ):
                return []  # no vector of this size stored yet
            if allowed is not None:
                statement = statement.where(is_one_of(connection, table.c.paper_seq, allowed))
            candidates = ef_search(limit)
            connection.execute(text(f"SET LOCAL hnsw.ef_search = {candidates}"))
            # psycopg prepares a statement run five times on a connection; its generic plan
            # (vector and limit unknown) scans every vector instead of the HNSW index
            connection.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
            # the model (and any filter) is checked on the graph's candidates: when too few
            # pass, keep walking the graph instead of returning fewer than ``limit``
            connection.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
            rows = connection.execute(statement.order_by(distance).limit(candidates)).all()
        # relaxed order: later rows may be nearer, so all candidates are sorted, then cut
        ranked = sorted(rows, key=lambda row: row.distance)[:limit]
        return [(int(row.paper_seq), 1.0 - float(row.distance)) for row in ranked]

    def vector_of(self, seq: int) -> np.ndarray | None:
        with self.engine.connect() as connection:
            return vectors_of(connection, self.model, [seq]).get(seq)


class PgVectorBackend:
    """pgvector HNSW indexes, one table per dimension, written beside the stored bytes."""

    def index(self, engine: Engine, model: str) -> PgVectorIndex:
        return PgVectorIndex(engine, model)

    def store(
        self, connection: Connection, model: str, seqs: Sequence[int], vectors: np.ndarray
    ) -> None:
        if not len(seqs):
            return
        url = connection.engine.url.render_as_string(hide_password=False)
        _counts.pop((url, model), None)  # this process counts afresh what it wrote
        table = create_dimension(connection, int(vectors.shape[1]))
        connection.execute(
            table.insert(),
            [
                {"paper_seq": seq, "model": model, "embedding": np.asarray(v, dtype=np.float32)}
                for seq, v in zip(seqs, vectors, strict=True)
            ],
        )

    def rebuild(self, connection: Connection) -> None:
        backfill(connection)

    def problem(self, engine: Engine) -> str | None:
        with engine.connect() as connection:
            return missing_pgvector(connection)

    def saved_lag(self, engine: Engine, model: str) -> None:
        """Nothing saved: the HNSW index is in the database."""
        return None

    def save_graph(
        self, engine: Engine, model: str, progress: Callable[[int, int], bool] | None = None
    ) -> int | None:
        """Nothing to save: the HNSW index lives in the database and follows every write.

        Stored vectors it lacks are copied in first (a store restored without pgvector, once
        the extension is created). Returns how many vectors of ``model`` it holds (None for
        none), as SQLite's graph does.
        """
        with engine.begin() as connection:
            backfill(connection)
            count = connection.execute(
                select(func.count())
                .select_from(paper_vectors)
                .where(paper_vectors.c.model == model)
            ).scalar_one()
        return count or None
