"""Paper vectors: stored in the store per (paper, model), searched through the vector index.

Vectors live in the ``paper_vectors`` table beside the papers, keyed by model, with the hash
of the text they were made from, so a model change or an edited abstract is re-embedded and
nothing else is. Searching them is the engine's vector index
(:mod:`broadsheet.search.vector_index`): in memory on SQLite, pgvector on PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import Connection, Engine, and_, delete, func, null, select

from broadsheet.db.bulk import bulk_insert
from broadsheet.db.schema import paper_vectors, papers, passage_vectors
from broadsheet.search.embed import paper_text, text_hash
from broadsheet.search.passages import passages_hash, split_passages
from broadsheet.search.vector_index import VectorIndex, for_engine


@dataclass(frozen=True, slots=True)
class PendingPaper:
    """A paper whose vector, or passage vectors, are missing or were made from other text."""

    seq: int
    text: str | None  # None: its vector is current
    text_hash: str
    passages: list[str] | None = None  # None: its passage vectors are current
    passages_hash: str = ""


@dataclass(frozen=True, slots=True)
class Share:
    """Which parts of the papers one of ``of`` processes takes: the parts (``seq // part
    size``) numbered ``number`` modulo ``of``."""

    number: int = 0
    of: int = 1


def pending_papers(
    connection: Connection,
    model: str,
    chunk: int = 2000,
    seqs: range | None = None,
    after: int = -1,
    share: Share | None = None,
    part_size: int = 256,
    passages: bool = False,
) -> Iterator[PendingPaper]:
    """Papers without a current vector for ``model`` (none yet, or made from other text), or
    also without current passage vectors when ``passages``, in seq order from ``after`` on;
    only those numbered in ``seqs``, or in the parts of ``part_size`` papers that ``share``
    takes, when given."""
    stored_passages = passage_vectors.c.text_hash if passages else null()
    joined = papers.outerjoin(
        paper_vectors,
        and_(paper_vectors.c.paper_seq == papers.c.seq, paper_vectors.c.model == model),
    )
    if passages:
        joined = joined.outerjoin(
            passage_vectors,
            and_(passage_vectors.c.paper_seq == papers.c.seq, passage_vectors.c.model == model),
        )
    query = (
        select(
            papers.c.seq,
            papers.c.title,
            papers.c.abstract,
            paper_vectors.c.text_hash,
            stored_passages,
        )
        .select_from(joined)
        .where(papers.c.seq > after)
        .order_by(papers.c.seq)
        .execution_options(yield_per=chunk)
    )
    if seqs is not None:
        query = query.where(papers.c.seq >= seqs.start, papers.c.seq < seqs.stop)
    if share is not None and share.of > 1:
        query = query.where((papers.c.seq // part_size) % share.of == share.number)
    for seq, title, abstract, stored_hash, stored_passages_hash in connection.execute(query):
        text = paper_text(title, abstract)
        current = text_hash(text)
        stale_text = current != stored_hash
        split = split_passages(title, abstract) if passages else []
        current_passages = passages_hash(split) if split else ""
        stale_passages = bool(split) and current_passages != stored_passages_hash
        if stale_text or stale_passages:
            yield PendingPaper(
                seq,
                text if stale_text else None,
                current,
                split if stale_passages else None,
                current_passages,
            )


def store_vectors(
    connection: Connection, model: str, pending: list[PendingPaper], vectors: np.ndarray
) -> None:
    """Replace the vectors of ``pending`` papers for ``model`` (in the caller's transaction)."""
    if not pending:
        return
    write_vector_rows(connection, model, pending, vectors)
    for_engine(connection).store(connection, model, [p.seq for p in pending], vectors)


def write_vector_rows(
    connection: Connection, model: str, pending: list[PendingPaper], vectors: np.ndarray
) -> None:
    """Replace the stored vector rows of ``pending`` papers for ``model``, leaving the engine's
    vector index to be brought up to date (``store_vectors`` does both)."""
    connection.execute(
        delete(paper_vectors).where(
            paper_vectors.c.model == model,
            paper_vectors.c.paper_seq.in_([p.seq for p in pending]),
        )
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    bulk_insert(
        connection,
        paper_vectors,
        [
            {
                "paper_seq": p.seq,
                "model": model,
                "text_hash": p.text_hash,
                "dim": len(v),
                "vector": v.astype(np.float32).tobytes(),
                "created_at": now,
            }
            for p, v in zip(pending, vectors, strict=True)
        ],
    )


_paper_counts: dict[str, tuple[float, int]] = {}
COUNT_TTL = 10.0  # seconds a search may reuse the count of papers


def cached_paper_count(engine: Engine) -> int:
    """How many papers the store holds, counted at most every few seconds (a count scans)."""
    key = engine.url.render_as_string(hide_password=False)
    now = time.monotonic()
    hit = _paper_counts.get(key)
    if hit is None or now - hit[0] > COUNT_TTL:
        with engine.connect() as connection:
            count = connection.execute(select(func.count()).select_from(papers)).scalar_one()
        hit = _paper_counts[key] = (now, count)
    return hit[1]


def coverage(connection: Connection, model: str) -> tuple[int, int]:
    """(papers with a vector for ``model``, all papers)."""
    with_vectors = connection.execute(
        select(func.count()).select_from(paper_vectors).where(paper_vectors.c.model == model)
    ).scalar_one()
    total = connection.execute(select(func.count()).select_from(papers)).scalar_one()
    return with_vectors, total


def vector_index(engine: Engine, model: str) -> VectorIndex:
    """The store's index of ``model``, up to date with what has been committed."""
    return for_engine(engine).index(engine, model)


def save_graph(
    engine: Engine, model: str, progress: Callable[[int, int], bool] | None = None
) -> int | None:
    """Save the search structure kept outside the database (SQLite's HNSW graph of a large
    store); how many vectors it holds, None when there is nothing to save."""
    return for_engine(engine).save_graph(engine, model, progress)


def vectors_unavailable(engine: Engine) -> str | None:
    """Why vectors can be neither stored nor searched in this store (PostgreSQL without
    pgvector), with what to do; None when they can."""
    return for_engine(engine).problem(engine)
