"""Paper vectors: stored in the store per (paper, model), searched in memory.

Vectors live in the ``paper_vectors`` table beside the papers, keyed by model, with the hash
of the text they were made from, so a model change or an edited abstract is re-embedded and
nothing else is. The in-memory index holds every vector as a matrix and refreshes
incrementally from the table. Small stores are searched exactly (one matrix product, ~10 ms
per 100,000 papers); large ones through the HNSW graph of :mod:`broadsheet.search.ann` when
``broadsheet index`` has saved one, with exact scores for the candidates it finds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import Connection, Engine, and_, delete, func, select

from broadsheet.db.bulk import bulk_insert
from broadsheet.db.schema import paper_vectors, papers
from broadsheet.search.ann import ANN_FROM, CATCH_UP_LIMIT, AnnGraph, ann_path, graph_version
from broadsheet.search.embed import paper_text, text_hash

log = logging.getLogger(__name__)


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
    """All vectors of one model as a matrix; exact cosine search, or the graph when saved."""

    def __init__(self, model: str):
        self.model = model
        self._lock = threading.Lock()
        self.graph: AnnGraph | None = None
        self._graph_version: int | None = None
        self._clear()

    def _clear(self) -> None:
        self.seqs = np.zeros(0, dtype=np.int64)
        self.matrix = np.zeros((0, 0), dtype=np.float32)
        self._row_of: dict[int, int] = {}
        self._last_rowid = 0
        self._backlog: dict[int, tuple[int, np.ndarray]] = {}  # seq -> (rowid, vector) for graph

    def __len__(self) -> int:
        return len(self.seqs)

    @property
    def dim(self) -> int:
        return self.matrix.shape[1]

    @property
    def uses_graph(self) -> bool:
        """Whether unfiltered searches go through the HNSW graph (else: the exact scan)."""
        return self.graph is not None and not self._backlog

    def _rows_after(self, connection: Connection, rowid: int) -> list[tuple[int, int, bytes]]:
        return connection.exec_driver_sql(
            "SELECT rowid, paper_seq, vector FROM paper_vectors WHERE model = ? AND rowid > ?"
            " ORDER BY rowid",
            (self.model, rowid),
        ).all()

    def refresh(self, connection: Connection) -> int:
        """Load vectors written since the last refresh; returns how many."""
        sqlite = connection.dialect.name == "sqlite"
        rows = (
            self._rows_after(connection, self._last_rowid) if sqlite else self._all_rows(connection)
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
        self._queue_for_graph(rows)
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

    # the HNSW graph (large stores)

    def attach_graph(self, connection: Connection, path: Path | None) -> None:
        """Load the graph saved at ``path`` if it changed since the last look (one stat)."""
        version = graph_version(path)
        if version is None or version == self._graph_version or not len(self):
            return
        graph = AnnGraph.load(path, self.dim)
        with self._lock:
            self.graph, self._graph_version, self._backlog = graph, version, {}
        if graph is not None:
            self._queue_for_graph(self._rows_after(connection, graph.last_rowid))

    def _queue_for_graph(self, rows: list[tuple[int, int, bytes]]) -> None:
        if self.graph is None:
            return
        with self._lock:
            for rowid, seq, blob in rows:
                if rowid > self.graph.last_rowid:
                    self._backlog[seq] = (rowid, np.frombuffer(blob, dtype=np.float32))

    def catch_up_graph(
        self, build: bool = False, progress: Callable[[int, int], bool] | None = None
    ) -> None:
        """Add the vectors the graph lacks, unless more than CATCH_UP_LIMIT are missing.

        ``build=True`` (``broadsheet index``) builds a missing graph and adds any backlog.
        """
        limit = None if build else CATCH_UP_LIMIT
        if self.graph is None:
            if not build or not len(self):
                return
            with self._lock:
                self.graph = AnnGraph.empty(self.dim)
                self._backlog = {
                    int(seq): (self._last_rowid, self.matrix[row])
                    for row, seq in enumerate(self.seqs)
                }
        if not self._backlog or (limit is not None and len(self._backlog) > limit):
            if self._backlog:
                log.info("vector graph %d vectors behind: exact search", len(self._backlog))
            return
        with self._lock:
            seqs = np.fromiter(self._backlog, dtype=np.int64, count=len(self._backlog))
            vectors = np.vstack([vector for _, vector in self._backlog.values()])
            self.graph.upsert(seqs, vectors, progress=progress)
            self.graph.last_rowid = max(rowid for rowid, _ in self._backlog.values())
            self._backlog = {}

    def save_graph(self, path: Path) -> None:
        """Write the graph to ``path`` and remember that version as the one loaded."""
        self.graph.save(path, self.dim)
        self._graph_version = graph_version(path)

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
        query = query.astype(np.float32)
        if allowed is None and self.uses_graph:
            # a few spare candidates: half precision may swap neighbours at the boundary
            found = self.graph.search(query, limit + max(16, limit // 4) + (exclude is not None))
            rows = np.fromiter(
                (r for k in found if (r := self._row_of.get(int(k))) is not None), dtype=np.int64
            )
            scores = self.matrix[rows] @ query  # exact cosines for the graph's candidates
        else:
            rows = np.arange(len(self.seqs))
            scores = self.matrix @ query
            if allowed is not None:
                wanted = np.fromiter(allowed, dtype=np.int64, count=len(allowed))
                scores = np.where(np.isin(self.seqs, wanted), scores, -np.inf)
        if exclude is not None and (row := self._row_of.get(exclude)) is not None:
            scores[rows == row] = -np.inf
        count = min(limit, len(scores))
        if count == 0:
            return []
        top = np.argpartition(-scores, count - 1)[:count]
        top = top[np.argsort(-scores[top])]
        return [(int(self.seqs[rows[i]]), float(scores[i])) for i in top if np.isfinite(scores[i])]


_indexes: dict[tuple[str, str], VectorIndex] = {}
_indexes_lock = threading.Lock()


def vector_index(engine: Engine, model: str) -> VectorIndex:
    """The process's index for (store, model), brought up to date with the table and graph."""
    key = (engine.url.render_as_string(hide_password=False), model)
    with _indexes_lock:
        index = _indexes.setdefault(key, VectorIndex(model))
    with engine.connect() as connection:
        index.refresh(connection)
        index.attach_graph(connection, ann_path(engine, model))
    index.catch_up_graph()
    return index


def save_graph(
    engine: Engine, model: str, progress: Callable[[int, int], bool] | None = None
) -> int | None:
    """Build or update the saved HNSW graph of a large store; how many vectors it holds.

    None (and nothing saved) for stores under ``ANN_FROM`` vectors or not kept in a file.
    """
    path = ann_path(engine, model)
    index = vector_index(engine, model)
    if path is None or len(index) < ANN_FROM:
        return None
    index.catch_up_graph(build=True, progress=progress)
    index.save_graph(path)
    return len(index.graph)
