"""The vectors of a large SQLite store as files beside it, memory-mapped by every searcher.

Below ``ANN_FROM`` vectors the exact scan of an in-memory matrix is fast enough and nothing is
kept on disk. From there on, ``broadsheet index`` saves one *generation* of three files in
``<store>.ann/`` and then points ``<model>.json`` at it:

- ``<model>.<generation>.usearch``: a usearch HNSW graph (cosine, vectors in float16);
- ``<model>.<generation>.seqs.npy``: the papers' seqs, ascending;
- ``<model>.<generation>.f16.npy``: their vectors in float16, row for row.

Searching processes open all three read-only as memory maps (usearch's ``view``), so every
process on the machine shares one copy in the page cache, and opening takes milliseconds.
The next ``index`` extends the previous generation (new and changed vectors added to the
graph, deleted papers removed from it) rather than building from nothing, writes the next
generation, and switches the pointer atomically: a reader sees the old set or the new one,
never a mix. Old generations are deleted; a process still holding one keeps its mapping.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
from sqlalchemy import Connection, Engine

from broadsheet.search.saved_lag import SavedLag

log = logging.getLogger(__name__)

ANN_FROM = 20_000  # vectors; an exact scan of fewer takes under ~2 ms
# graph parameters; recall@200 against the exact scan: see bench/README.md
CONNECTIVITY, EXPANSION_ADD = 16, 128  # searches: settings.vector_ef_search
READ_CHUNK = 20_000  # vector rows read from the table at a time while saving


def ann_dir(engine: Engine) -> Path | None:
    """Where a SQLite store keeps its saved vectors; None for in-memory stores."""
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    return Path(f"{database}.ann")


def pointer_path(engine: Engine, model: str) -> Path | None:
    """The JSON file naming the current generation of ``model``'s saved vectors."""
    folder = ann_dir(engine)
    safe_model = re.sub(r"[^\w.-]", "_", model)
    return None if folder is None else folder / f"{safe_model}.json"


def saved_version(pointer: Path | None) -> int | None:
    """A number that changes whenever ``index`` saves a generation (None when there is none)."""
    try:
        return pointer.stat().st_mtime_ns if pointer else None
    except OSError:
        return None


def saved_lag(connection: Connection, pointer: Path | None, model: str) -> SavedLag | None:
    """Vectors of ``model`` the saved generation holds, and those written since (each searching
    process scans them exactly); None for a store that has none and is too small to need one."""
    if pointer is None:
        return None
    try:
        meta = orjson.loads(pointer.read_bytes())
        held, last_rowid = int(meta["vectors"]), int(meta["last_rowid"])
    except (OSError, ValueError, KeyError, TypeError):
        held, last_rowid = 0, 0
    newer = connection.exec_driver_sql(
        "SELECT count(*) FROM paper_vectors WHERE model = ? AND rowid > ?", (model, last_rowid)
    ).scalar_one()
    if held == 0:
        return SavedLag(0, newer, ANN_FROM) if newer >= ANN_FROM else None
    return SavedLag(held, newer, ANN_FROM)


def _ef_search() -> int:
    from broadsheet.config import get_settings

    return get_settings().vector_ef_search


def new_graph(dim: int):
    from usearch.index import Index

    return Index(
        ndim=dim,
        metric="cos",
        dtype="f16",
        connectivity=CONNECTIVITY,
        expansion_add=EXPANSION_ADD,
        expansion_search=_ef_search(),
    )


@dataclass(slots=True)
class SavedVectors:
    """One generation: the graph, the seqs and their float16 vectors, as found on disk."""

    graph: object  # usearch.index.Index
    seqs: np.ndarray  # int64, ascending
    vectors: np.ndarray | None  # float16, one row per seq (None: only a graph, to extend)
    last_rowid: int  # the newest ``paper_vectors`` row they include
    generation: str

    def __len__(self) -> int:
        return len(self.seqs)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def rows_of(self, seqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, which of ``seqs`` have one): where each seq's vector sits, if saved."""
        return _rows_in(self.seqs, seqs)

    @classmethod
    def open(cls, pointer: Path, view: bool = True) -> SavedVectors | None:
        """The generation ``pointer`` names, memory-mapped (``view``) or loaded to be extended;
        None when it is missing, unreadable or inconsistent."""
        from usearch.index import Index

        try:
            meta = orjson.loads(pointer.read_bytes())
            if "generation" not in meta:
                log.info("%s: a graph of the earlier layout, extended by the next `index`", pointer)
                return None
            generation = str(meta["generation"])
            if not meta["vectors"]:
                raise ValueError("no vectors")  # usearch cannot open an empty graph
            seqs = np.load(_file(pointer, generation, "seqs.npy"), mmap_mode="r")
            vectors = np.load(_file(pointer, generation, "f16.npy"), mmap_mode="r")
            graph = Index.restore(str(_file(pointer, generation, "usearch")), view=view)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            log.warning("saved vectors at %s unusable (%s): searching exactly", pointer, exc)
            return None
        consistent = (
            graph is not None
            and seqs.ndim == 1
            and vectors.ndim == 2
            and len(seqs) == len(vectors) == len(graph)
            and graph.ndim == vectors.shape[1] == meta.get("dim")
        )
        if not consistent:
            log.warning("saved vectors at %s inconsistent: searching exactly", pointer)
            return None
        graph.expansion_search = _ef_search()
        return cls(graph, seqs, vectors, int(meta["last_rowid"]), generation)

    def approximate_nearest(self, query: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(seqs, cosines from the float16 copy) of about the ``count`` nearest, nearest first."""
        if count <= 0 or not len(self):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        matches = self.graph.search(np.asarray(query, dtype=np.float32), count)
        return np.asarray(matches.keys, dtype=np.int64), 1.0 - np.asarray(matches.distances)

    def scores_of(self, seqs: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the seqs of ``seqs`` saved here, their cosines from the float16 copy)."""
        rows, found = self.rows_of(seqs)
        rows, kept = rows[found], seqs[found]
        query = np.asarray(query, dtype=np.float32)
        scores = np.empty(len(rows), dtype=np.float32)
        order = np.argsort(rows)  # reading the map front to back
        for start in range(0, len(order), 32_768):
            chunk = order[start : start + 32_768]
            # widened first: numpy multiplies float16 without BLAS, twice as slowly
            scores[chunk] = self.vectors[rows[chunk]].astype(np.float32) @ query
        return kept, scores


def _rows_in(sorted_seqs: np.ndarray, seqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, which of ``seqs`` are there): the position of each of ``seqs`` in
    ``sorted_seqs``."""
    rows = np.minimum(np.searchsorted(sorted_seqs, seqs), max(len(sorted_seqs) - 1, 0))
    found = sorted_seqs[rows] == seqs if len(sorted_seqs) else np.zeros(len(seqs), dtype=bool)
    return rows, found


def _place(matrix: np.ndarray, held: np.ndarray, seqs: np.ndarray, vectors: np.ndarray) -> None:
    """Write ``vectors`` into the rows of ``matrix`` that ``held`` gives their ``seqs``."""
    rows, found = _rows_in(held, seqs)
    matrix[rows[found]] = vectors[found]


def _file(pointer: Path, generation: str, kind: str) -> Path:
    return pointer.with_name(f"{pointer.stem}.{generation}.{kind}")


def _rows(
    connection: Connection, model: str, after: int, upto: int | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
    """(seqs, float32 vectors, newest rowid) of the rows written after ``after`` (up to
    ``upto``), by chunk."""
    upto = (1 << 62) if upto is None else upto
    while True:
        rows = connection.exec_driver_sql(
            "SELECT rowid, paper_seq, vector FROM paper_vectors"
            " WHERE model = ? AND rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?",
            (model, after, upto, READ_CHUNK),
        ).all()
        if not rows:
            return
        after = rows[-1][0]
        seqs = np.fromiter((seq for _, seq, _ in rows), dtype=np.int64, count=len(rows))
        yield seqs, np.vstack([np.frombuffer(blob, dtype=np.float32) for *_, blob in rows]), after


def _current_seqs(connection: Connection, model: str) -> np.ndarray:
    seqs = connection.exec_driver_sql(
        "SELECT paper_seq FROM paper_vectors WHERE model = ? ORDER BY paper_seq", (model,)
    ).scalars()
    return np.fromiter(seqs, dtype=np.int64)


def save_generation(
    connection: Connection,
    pointer: Path,
    model: str,
    progress: Callable[[int, int], bool] | None = None,
) -> int:
    """Write the next generation of ``model``'s saved vectors; how many it holds.

    The previous generation's graph is extended with the rows written since it (added, or
    replacing an older vector of the same paper) and loses the papers whose vector is gone.
    Without a usable previous generation everything is read and the graph built afresh. Rows
    written while this runs are left for the next save: searchers read them from the table.
    """
    unchanged = _unchanged_count(connection, pointer, model)
    if unchanged is not None:
        return unchanged
    previous = SavedVectors.open(pointer, view=False) if pointer.exists() else None
    if previous is None:
        previous = _legacy_graph(pointer)
    graph = previous.graph if previous else None
    last_rowid = saved_upto = previous.last_rowid if previous else 0
    changed_seqs, changed_vectors = [], []
    for seqs, vectors, newest in _rows(connection, model, saved_upto):
        last_rowid = newest
        if graph is None:
            graph = new_graph(vectors.shape[1])
        elif graph.ndim != vectors.shape[1]:
            raise ValueError(f"{model}: stored vectors have {vectors.shape[1]} dimensions")
        keys = seqs.astype(np.uint64)
        present = np.atleast_1d(graph.contains(keys))
        if present.any():
            graph.remove(keys[present])
        graph.add(keys, vectors, progress=progress)
        changed_seqs.append(seqs)
        changed_vectors.append(vectors.astype(np.float16))
    if graph is None:  # no vectors at all
        return 0
    changed = np.concatenate(changed_seqs) if changed_seqs else np.zeros(0, dtype=np.int64)
    held = np.union1d(previous.seqs if previous else changed, changed)
    keep = np.isin(held, _current_seqs(connection, model), assume_unique=True)
    if not keep.all():  # papers whose vector is gone
        graph.remove(held[~keep].astype(np.uint64))
    held = held[keep]
    if not len(held):  # usearch cannot open an emptied graph: keep no files at all
        pointer.unlink(missing_ok=True)
        for stale in _generations(pointer):
            _remove_generation(pointer, stale)
        return 0
    if previous is not None and previous.vectors is not None and not changed_seqs and keep.all():
        return len(held)  # nothing written or deleted since: the saved generation stands
    generation = uuid.uuid4().hex[:12]
    pointer.parent.mkdir(parents=True, exist_ok=True)
    matrix = np.lib.format.open_memmap(
        _file(pointer, generation, "f16.npy"),
        mode="w+",
        dtype=np.float16,
        shape=(len(held), graph.ndim),
    )
    if previous is not None and previous.vectors is None:  # a graph of the earlier layout
        for seqs, vectors, _ in _rows(connection, model, 0, previous.last_rowid):
            _place(matrix, held, seqs, vectors)
    elif previous is not None:
        for start in range(0, len(held), 262_144):
            part = held[start : start + 262_144]
            rows, found = previous.rows_of(part)
            matrix[start + np.flatnonzero(found)] = previous.vectors[rows[found]]
    for seqs, vectors in zip(changed_seqs, changed_vectors, strict=True):
        _place(matrix, held, seqs, vectors)
    matrix.flush()
    del matrix
    np.save(_file(pointer, generation, "seqs.npy"), held)
    if len(graph) != len(held):
        _remove_generation(pointer, generation)
        raise RuntimeError(f"{model}: graph holds {len(graph)} vectors, expected {len(held)}")
    graph.save(str(_file(pointer, generation, "usearch")))
    meta = {
        "generation": generation,
        "dim": graph.ndim,
        "last_rowid": last_rowid,
        "vectors": len(held),
    }
    scratch = pointer.with_name(f"{pointer.name}.part-{os.getpid()}")
    scratch.write_bytes(orjson.dumps(meta))
    os.replace(scratch, pointer)
    pointer.with_suffix(".usearch").unlink(missing_ok=True)  # the earlier layout's graph
    for stale in _generations(pointer) - {generation}:
        _remove_generation(pointer, stale)
    return len(held)


def _unchanged_count(connection: Connection, pointer: Path, model: str) -> int | None:
    """How many vectors the saved generation holds, if it still holds exactly the table's:
    none written since (every write is a new row) and none deleted (the count is the same)."""
    saved = SavedVectors.open(pointer) if pointer.exists() else None
    if saved is None:
        return None
    newest, count = connection.exec_driver_sql(
        "SELECT max(rowid), count(*) FROM paper_vectors WHERE model = ?", (model,)
    ).one()
    return count if (newest or 0) <= saved.last_rowid and count == len(saved) else None


def _legacy_graph(pointer: Path) -> SavedVectors | None:
    """The graph of the earlier layout (``<model>.usearch`` beside a pointer without a
    generation), taken over so that a large store's graph is extended, not built again."""
    from usearch.index import Index

    try:
        meta = orjson.loads(pointer.read_bytes())
        graph = Index.restore(str(pointer.with_suffix(".usearch")))
        last_rowid = int(meta["last_rowid"])
    except (OSError, ValueError, KeyError, TypeError, RuntimeError):
        return None
    if graph is None or "generation" in meta:
        return None
    seqs = np.sort(np.asarray(graph.keys, dtype=np.int64))
    return SavedVectors(graph, seqs, None, last_rowid, "")


def _generations(pointer: Path) -> set[str]:
    """The generations with files beside ``pointer`` (exactly this model's: another model's
    name may begin with this one's)."""
    pattern = re.compile(
        rf"{re.escape(pointer.stem)}\.([0-9a-f]{{12}})\.(usearch|seqs\.npy|f16\.npy)"
    )
    return {
        found.group(1)
        for path in pointer.parent.iterdir()
        if (found := pattern.fullmatch(path.name))
    }


def _remove_generation(pointer: Path, generation: str) -> None:
    for kind in ("usearch", "seqs.npy", "f16.npy"):
        _file(pointer, generation, kind).unlink(missing_ok=True)
