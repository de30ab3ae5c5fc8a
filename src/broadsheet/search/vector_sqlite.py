"""The SQLite vector index: an exact in-memory scan for small stores, shared memory maps for
large ones.

Small stores (and large ones before ``broadsheet index`` has saved their vectors) are held as
one float32 matrix, refreshed incrementally from ``paper_vectors`` by SQLite's rowid and
searched exactly (one matrix product, ~10 ms per 100,000 papers). Large stores are searched
through the generation of files :mod:`broadsheet.search.ann` saves beside the store: the HNSW
graph and a float16 copy of the vectors, memory-mapped and shared by every process, plus the
few vectors written since, which each process reads from the table and scans exactly. Either
way the final candidates are scored with their exact stored float32 vectors.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import numpy as np
from sqlalchemy import ColumnElement, Connection, Engine, select

from broadsheet.db.schema import papers
from broadsheet.search.ann import (
    ANN_FROM,
    SavedVectors,
    pointer_path,
    save_generation,
    saved_lag,
    saved_version,
)
from broadsheet.search.saved_lag import SavedLag
from broadsheet.search.vector_index import Neighbours

log = logging.getLogger(__name__)

# Filtered searches of saved vectors: a filter keeping at least this share of the papers is
# applied to a wider graph search (of at most GRAPH_FILTER_MOST candidates); narrower ones
# scan the allowed papers' rows, which costs about 1 ms per 1,000 papers.
GRAPH_FILTER_SHARE = 0.05
GRAPH_FILTER_MOST = 8_192


def _rows_after(connection: Connection, model: str, rowid: int) -> list[tuple[int, int, bytes]]:
    return connection.exec_driver_sql(
        "SELECT rowid, paper_seq, vector FROM paper_vectors WHERE model = ? AND rowid > ?"
        " ORDER BY rowid",
        (model, rowid),
    ).all()


def _stored(connection: Connection, model: str, seqs: list[int]) -> dict[int, np.ndarray]:
    """The stored float32 vectors of ``seqs`` (those that still have one), read by key.

    A plain ``IN`` of bound parameters: for a few hundred keys SQLite answers this 2-3x
    faster than the JSON-array membership the rest of the code uses.
    """
    found: dict[int, np.ndarray] = {}
    for start in range(0, len(seqs), 500):
        part = seqs[start : start + 500]
        rows = connection.exec_driver_sql(
            "SELECT paper_seq, vector FROM paper_vectors"
            f" WHERE model = ? AND paper_seq IN ({', '.join('?' * len(part))})",
            (model, *part),
        )
        found.update((seq, np.frombuffer(blob, dtype=np.float32)) for seq, blob in rows)
    return found


def _matching(engine: Engine, where: Sequence[ColumnElement[bool]], allowed: set[int] | None):
    """The seqs of papers that meet ``where`` (and are in ``allowed``, when given)."""
    with engine.connect() as connection:
        found = set(connection.execute(select(papers.c.seq).where(*where)).scalars())
    return found if allowed is None else found & allowed


def _best(seqs: np.ndarray, scores: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` highest-scoring (seqs, scores), best first."""
    count = min(count, len(scores))
    if count <= 0:
        return seqs[:0], scores[:0]
    top = np.argpartition(-scores, count - 1)[:count]
    top = top[np.argsort(-scores[top], kind="stable")]
    return seqs[top], scores[top]


class MatrixIndex:
    """All vectors of one model as a float32 matrix in this process, searched exactly."""

    uses_graph = False

    def __init__(self, model: str):
        self.model = model
        self._lock = threading.Lock()
        self.engine: Engine | None = None  # of the store, for searches filtered by conditions
        self.seqs = np.zeros(0, dtype=np.int64)
        self.matrix = np.zeros((0, 0), dtype=np.float32)
        self._row_of: dict[int, int] = {}
        self._last_rowid = 0

    def __len__(self) -> int:
        return len(self.seqs)

    def refresh(self, connection: Connection) -> int:
        """Load vectors written since the last refresh; returns how many."""
        rows = _rows_after(connection, self.model, self._last_rowid)
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
            allowed = _matching(self.engine, where, allowed)
        scores = self.matrix @ query.astype(np.float32)
        if allowed is not None:
            wanted = np.fromiter(allowed, dtype=np.int64, count=len(allowed))
            scores = np.where(np.isin(self.seqs, wanted), scores, -np.inf)
        if exclude is not None and (row := self._row_of.get(exclude)) is not None:
            scores[row] = -np.inf
        seqs, scores = _best(self.seqs, scores, limit)
        return [(int(s), float(c)) for s, c in zip(seqs, scores, strict=True) if np.isfinite(c)]


class MappedIndex:
    """A large store's saved generation, memory-mapped, and the vectors written since it."""

    uses_graph = True

    def __init__(self, model: str, saved: SavedVectors, version: int):
        self.model = model
        self.saved = saved
        self.version = version
        self.engine: Engine | None = None
        self._lock = threading.Lock()
        self._last_rowid = saved.last_rowid
        self._recent: dict[int, np.ndarray] = {}  # seq -> float32 vector, written since
        # (seqs, matrix) of those, replaced as one so a search never sees a mix
        self._recent_arrays = (np.zeros(0, dtype=np.int64), np.zeros((0, saved.dim), np.float32))
        self._unsaved = 0  # recent papers the saved generation lacks altogether

    def __len__(self) -> int:
        return len(self.saved) + self._unsaved

    @property
    def recent(self) -> int:
        """How many vectors this process holds in memory (written since the saved generation)."""
        return len(self._recent)

    def refresh(self, connection: Connection) -> int:
        """Read the vectors written since the last refresh; returns how many."""
        rows = _rows_after(connection, self.model, self._last_rowid)
        if not rows:
            return 0
        with self._lock:
            for rowid, seq, blob in rows:
                self._recent[seq] = np.frombuffer(blob, dtype=np.float32)
                self._last_rowid = max(self._last_rowid, rowid)
            seqs = np.fromiter(self._recent, dtype=np.int64, count=len(self._recent))
            matrix = np.vstack(list(self._recent.values()))
            self._unsaved = int((~self.saved.rows_of(seqs)[1]).sum())
            self._recent_arrays = (seqs, matrix)
        return len(rows)

    def vector_of(self, seq: int) -> np.ndarray | None:
        vector = self._recent.get(seq)
        if vector is not None:
            return vector
        with self.engine.connect() as connection:
            return _stored(connection, self.model, [seq]).get(seq)

    def _allowed_candidates(
        self, query: np.ndarray, wanted: np.ndarray, spare: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Saved candidates among ``wanted`` (seqs, approximate cosines).

        A filter that keeps a good share of the papers is applied to the graph's answer,
        asked for as many more as the share needs; a narrow one (or one the graph would be
        asked for more candidates than it allows, or a graph answer with too few of them)
        scans the allowed papers' float16 rows, which is exact.
        """
        share = len(wanted) / max(len(self.saved), 1)
        count = min(int(2 * spare / share), GRAPH_FILTER_MOST) if share else 0
        if share >= GRAPH_FILTER_SHARE and count < len(wanted):
            seqs, scores = self.saved.approximate_nearest(query, count)
            kept = np.isin(seqs, wanted)
            if kept.sum() >= spare:
                return seqs[kept], scores[kept]
        return self.saved.scores_of(wanted, query)

    def search(
        self,
        query: np.ndarray,
        limit: int,
        allowed: set[int] | None = None,
        exclude: int | None = None,
        where: Sequence[ColumnElement[bool]] = (),
    ) -> Neighbours:
        """The ``limit`` nearest papers as (seq, cosine), best first.

        Candidates come from the graph (or, when filtered, from scanning the allowed papers'
        float16 rows) and from the vectors written since; a few more than asked are re-scored
        with their stored float32 vectors, which also drops papers deleted since the save.
        """
        if limit <= 0 or not len(self):
            return []
        if where:
            allowed = _matching(self.engine, where, allowed)
        query = query.astype(np.float32)
        spare = limit + max(16, limit // 4) + (exclude is not None)
        recent_seqs, recent_matrix = self._recent_arrays
        if allowed is None:
            seqs, scores = self.saved.approximate_nearest(query, spare)
            recent_scores = recent_matrix @ query
        else:
            wanted = np.unique(np.fromiter(allowed, dtype=np.int64, count=len(allowed)))
            seqs, scores = self._allowed_candidates(query, wanted, spare)
            kept = np.isin(recent_seqs, wanted, assume_unique=True)
            recent_seqs, recent_scores = recent_seqs[kept], recent_matrix[kept] @ query
        if len(recent_seqs):  # a saved vector rewritten since counts in its new version
            fresh = ~np.isin(seqs, recent_seqs)
            seqs = np.concatenate([seqs[fresh], recent_seqs])
            scores = np.concatenate([scores[fresh], recent_scores])
        if exclude is not None:
            scores = np.where(seqs == exclude, -np.inf, scores)
        seqs, _ = _best(seqs, scores, spare)
        with self.engine.connect() as connection:
            stored = _stored(connection, self.model, sorted(seqs.tolist()))  # in key order
        exact = [(seq, float(vector @ query)) for seq, vector in stored.items() if seq != exclude]
        exact.sort(key=lambda pair: -pair[1])
        return exact[:limit]


SqliteIndex = MatrixIndex | MappedIndex
_indexes: dict[tuple[str, str], SqliteIndex] = {}
_unusable: dict[tuple[str, str], int] = {}  # saved versions that would not open, not retried
_indexes_lock = threading.Lock()


def sqlite_index(engine: Engine, model: str) -> SqliteIndex:
    """The process's index for (store, model): the saved generation when there is a usable
    one (switched to as soon as ``index`` saves a new one), else the in-memory matrix."""
    key = (engine.url.render_as_string(hide_password=False), model)
    pointer = pointer_path(engine, model)
    version = saved_version(pointer)
    with _indexes_lock:
        index = _indexes.get(key)
        if version is None and isinstance(index, MappedIndex):  # its files were taken away
            index = None
        current = isinstance(index, MappedIndex) and index.version == version
        if version is not None and not current and _unusable.get(key) != version:
            saved = SavedVectors.open(pointer)
            if saved is not None:
                index = MappedIndex(model, saved, version)
            else:
                _unusable[key] = version
        if index is None:
            index = MatrixIndex(model)
        _indexes[key] = index
    index.engine = engine
    with engine.connect() as connection:
        index.refresh(connection)
    return index


def save_graph(
    engine: Engine, model: str, progress: Callable[[int, int], bool] | None = None
) -> int | None:
    """Save the next generation of a large store's vectors; how many it holds.

    None (and nothing saved) for stores under ``ANN_FROM`` vectors or not kept in a file.
    """
    pointer = pointer_path(engine, model)
    if pointer is None:
        return None
    with engine.connect() as connection:
        if not pointer.exists():  # a first save: only for a store that has grown large
            count = connection.exec_driver_sql(
                "SELECT count(*) FROM paper_vectors WHERE model = ?", (model,)
            ).scalar_one()
            if count < ANN_FROM:
                return None
        return save_generation(connection, pointer, model, progress)


class SqliteVectorBackend:
    """Vectors searched in memory or through the saved generation, refreshed from the table."""

    def index(self, engine: Engine, model: str) -> SqliteIndex:
        return sqlite_index(engine, model)

    def store(
        self, connection: Connection, model: str, seqs: Sequence[int], vectors: np.ndarray
    ) -> None:
        """Nothing more to write: searchers pick the new rows up by rowid."""

    def rebuild(self, connection: Connection) -> None:
        """Nothing to rebuild: searchers read the stored vectors (the saved generation comes
        with the next ``broadsheet index``)."""

    def problem(self, engine: Engine) -> str | None:
        """Nothing: the vectors sit in the store file and are searched here."""
        return None

    def saved_lag(self, engine: Engine, model: str) -> SavedLag | None:
        with engine.connect() as connection:
            return saved_lag(connection, pointer_path(engine, model), model)

    def save_graph(
        self, engine: Engine, model: str, progress: Callable[[int, int], bool] | None = None
    ) -> int | None:
        return save_graph(engine, model, progress)
