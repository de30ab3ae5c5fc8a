"""Paper vectors: stored in the store per (paper, model), searched in memory.

Vectors live in the ``paper_vectors`` table beside the papers, keyed by model, with the hash
of the text they were made from, so a model change or an edited abstract is re-embedded and
nothing else is. The in-memory index is exact (one matrix product, ~10 ms per 100,000
papers) and refreshes incrementally from the table.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import Connection, Engine, and_, delete, func, select

from broadsheet.db.bulk import bulk_insert
from broadsheet.db.schema import paper_vectors, papers
from broadsheet.search.embed import paper_text, text_hash


@dataclass(frozen=True, slots=True)
class PendingPaper:
    seq: int
    text: str
    text_hash: str


def pending_papers(connection: Connection, model: str, chunk: int = 2000) -> Iterator[PendingPaper]:
    """Papers without a current vector for ``model`` (none yet, or made from other text)."""
    query = (
        select(papers.c.seq, papers.c.title, papers.c.abstract, paper_vectors.c.text_hash)
        .select_from(
            papers.outerjoin(
                paper_vectors,
                and_(paper_vectors.c.paper_seq == papers.c.seq, paper_vectors.c.model == model),
            )
        )
        .order_by(papers.c.seq)
        .execution_options(yield_per=chunk)
    )
    for seq, title, abstract, stored_hash in connection.execute(query):
        text = paper_text(title, abstract)
        current = text_hash(text)
        if current != stored_hash:
            yield PendingPaper(seq, text, current)


def store_vectors(
    connection: Connection, model: str, pending: list[PendingPaper], vectors: np.ndarray
) -> None:
    """Replace the vectors of ``pending`` papers for ``model`` (in the caller's transaction)."""
    seqs = [p.seq for p in pending]
    connection.execute(
        delete(paper_vectors).where(
            paper_vectors.c.model == model, paper_vectors.c.paper_seq.in_(seqs)
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


class VectorIndex:
    """All vectors of one model as a matrix; exact cosine search with an optional mask."""

    def __init__(self, model: str):
        self.model = model
        self._lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        self.seqs = np.zeros(0, dtype=np.int64)
        self.matrix = np.zeros((0, 0), dtype=np.float32)
        self._row_of: dict[int, int] = {}
        self._last_rowid = 0

    def __len__(self) -> int:
        return len(self.seqs)

    def refresh(self, connection: Connection) -> int:
        """Load vectors written since the last refresh; returns how many."""
        rows = (
            connection.exec_driver_sql(
                "SELECT rowid, paper_seq, vector FROM paper_vectors WHERE model = ? AND rowid > ?"
                " ORDER BY rowid",
                (self.model, self._last_rowid),
            ).all()
            if connection.dialect.name == "sqlite"
            else self._all_rows(connection)
        )
        if not rows:
            return 0
        with self._lock:
            new_seqs, new_vectors = [], []
            for rowid, seq, blob in rows:
                vector = np.frombuffer(blob, dtype=np.float32)
                row = self._row_of.get(seq)
                if row is not None and self.matrix.shape[1] == len(vector):
                    self.matrix[row] = vector
                else:
                    self._row_of[seq] = len(self.seqs) + len(new_seqs)
                    new_seqs.append(seq)
                    new_vectors.append(vector)
                self._last_rowid = max(self._last_rowid, rowid)
            if new_seqs:
                stacked = np.vstack(new_vectors)
                self.matrix = stacked if len(self.seqs) == 0 else np.vstack([self.matrix, stacked])
                self.seqs = np.concatenate([self.seqs, np.asarray(new_seqs, dtype=np.int64)])
        return len(rows)

    def _all_rows(self, connection: Connection) -> list[tuple[int, int, bytes]]:
        """Every vector of the model (databases without SQLite's rowid reload in full)."""
        self._clear()
        rows = connection.execute(
            select(paper_vectors.c.paper_seq, paper_vectors.c.vector).where(
                paper_vectors.c.model == self.model
            )
        ).all()
        return [(0, seq, blob) for seq, blob in rows]

    def vector_of(self, seq: int) -> np.ndarray | None:
        row = self._row_of.get(seq)
        return None if row is None else self.matrix[row]

    def search(
        self,
        query: np.ndarray,
        limit: int,
        allowed: set[int] | None = None,
        exclude: int | None = None,
    ) -> list[tuple[int, float]]:
        """The ``limit`` nearest papers as (seq, cosine), best first."""
        if len(self.seqs) == 0 or limit <= 0:
            return []
        scores = self.matrix @ query.astype(np.float32)
        if allowed is not None:
            mask = np.isin(self.seqs, np.fromiter(allowed, dtype=np.int64, count=len(allowed)))
            scores = np.where(mask, scores, -np.inf)
        if exclude is not None and (row := self._row_of.get(exclude)) is not None:
            scores[row] = -np.inf
        count = min(limit, len(scores))
        top = np.argpartition(-scores, count - 1)[:count]
        top = top[np.argsort(-scores[top])]
        return [(int(self.seqs[i]), float(scores[i])) for i in top if np.isfinite(scores[i])]


_indexes: dict[tuple[str, str], VectorIndex] = {}
_indexes_lock = threading.Lock()


def vector_index(engine: Engine, model: str) -> VectorIndex:
    """The process's index for (store, model), brought up to date with the table."""
    key = (engine.url.render_as_string(hide_password=False), model)
    with _indexes_lock:
        index = _indexes.setdefault(key, VectorIndex(model))
    with engine.connect() as connection:
        index.refresh(connection)
    return index
