"""The SQLite vector index: every vector of a model in memory, with an HNSW graph for large stores.

The in-memory index holds every vector as a matrix and refreshes incrementally from
``paper_vectors`` (by SQLite's rowid, so only new rows are read). Small stores are searched
exactly (one matrix product, ~10 ms per 100,000 papers); large ones through the HNSW graph of
:mod:`broadsheet.search.ann` when ``broadsheet index`` has saved one, with exact scores for the
candidates it finds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from sqlalchemy import ColumnElement, Connection, Engine, select

from broadsheet.db.schema import papers
from broadsheet.search.ann import ANN_FROM, CATCH_UP_LIMIT, AnnGraph, ann_path, graph_version
from broadsheet.search.vector_index import Neighbours

log = logging.getLogger(__name__)


class MatrixIndex:
    """All vectors of one model as a matrix; exact cosine search, or the graph when saved."""

    def __init__(self, model: str):
        self.model = model
        self._lock = threading.Lock()
        self.engine: Engine | None = None  # of the store, for searches filtered by conditions
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
        rows = self._rows_after(connection, self._last_rowid)
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

    def _matching(self, where: Sequence[ColumnElement[bool]], allowed: set[int] | None) -> set[int]:
        """The seqs of papers that meet ``where`` (and are in ``allowed``, when given)."""
        with self.engine.connect() as connection:
            found = set(connection.execute(select(papers.c.seq).where(*where)).scalars())
        return found if allowed is None else found & allowed

    def vector_of(self, seq: int) -> np.ndarray | None:
        row = self._row_of.get(seq)
        return None if row is None else self.matrix[row]

    def search(
        self,
        query: np.ndarray,
        limit: int,
        allowed: set[int] | None = None,
        exclude: int | None = None,
        where: Sequence[ColumnElement[bool]] = (),
    ) -> Neighbours:
        """The ``limit`` nearest papers as (seq, cosine), best first."""
        if len(self.seqs) == 0 or limit <= 0:
            return []
        if where:
            allowed = self._matching(where, allowed)
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


_indexes: dict[tuple[str, str], MatrixIndex] = {}
_indexes_lock = threading.Lock()


def matrix_index(engine: Engine, model: str) -> MatrixIndex:
    """The process's index for (store, model), brought up to date with the table and graph."""
    key = (engine.url.render_as_string(hide_password=False), model)
    with _indexes_lock:
        index = _indexes.setdefault(key, MatrixIndex(model))
    index.engine = engine
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
    index = matrix_index(engine, model)
    if path is None or len(index) < ANN_FROM:
        return None
    index.catch_up_graph(build=True, progress=progress)
    index.save_graph(path)
    return len(index.graph)


class SqliteVectorBackend:
    """Vectors searched in memory (and through a saved graph), refreshed from the table."""

    def index(self, engine: Engine, model: str) -> MatrixIndex:
        return matrix_index(engine, model)

    def store(
        self, connection: Connection, model: str, seqs: Sequence[int], vectors: np.ndarray
    ) -> None:
        """Nothing more to write: searchers pick the new rows up by rowid."""

    def rebuild(self, connection: Connection) -> None:
        """Nothing to rebuild: searchers read the stored vectors (a saved graph comes with the
        next ``broadsheet index``)."""

    def save_graph(
        self, engine: Engine, model: str, progress: Callable[[int, int], bool] | None = None
    ) -> int | None:
        return save_graph(engine, model, progress)
