"""The vector index seam: what search, similar papers, "for you" and ``index`` ask of vectors.

The vectors themselves always sit in ``paper_vectors`` as float32 bytes (one row per paper and
model), on every engine. How they are searched differs: SQLite holds a model's vectors in memory
as a matrix, with a usearch HNSW graph beside the store file for large stores
(:mod:`broadsheet.search.vector_sqlite`); PostgreSQL keeps them in a pgvector column with an
HNSW index and searches in the database, so no process loads every vector
(:mod:`broadsheet.search.vector_pgvector`). :func:`for_engine` picks one, once per engine.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import numpy as np
from sqlalchemy import ColumnElement, Connection, Engine, select

from broadsheet.db.membership import is_one_of
from broadsheet.db.schema import paper_vectors
from broadsheet.search.saved_lag import SavedLag

Neighbours = list[tuple[int, float]]  # (paper seq, cosine), best first


class VectorIndex(Protocol):
    """One model's vectors in one store, ready to search."""

    model: str

    def __len__(self) -> int:
        """How many papers have a vector for the model (may lag writes by a few seconds)."""

    def search(
        self,
        query: np.ndarray,
        limit: int,
        allowed: set[int] | None = None,
        exclude: int | None = None,
        where: Sequence[ColumnElement[bool]] = (),
    ) -> Neighbours:
        """The ``limit`` papers nearest to the unit vector ``query``, as (seq, cosine).

        ``allowed`` keeps only those seqs, ``where`` only papers matching these conditions on
        ``papers``, ``exclude`` drops one paper (the one whose neighbours are asked for).
        """

    def vector_of(self, seq: int) -> np.ndarray | None:
        """The stored vector of one paper, None while it has none."""


class VectorBackend(Protocol):
    """One engine's way of keeping vectors searchable."""

    def index(self, engine: Engine, model: str) -> VectorIndex:
        """The index of ``model`` in this store, up to date with what has been committed."""

    def store(
        self, connection: Connection, model: str, seqs: Sequence[int], vectors: np.ndarray
    ) -> None:
        """Make freshly written ``paper_vectors`` rows searchable (in the caller's transaction)."""

    def save_graph(
        self, engine: Engine, model: str, progress: Callable[[int, int], bool] | None = None
    ) -> int | None:
        """Persist whatever search structure lives outside the database; vectors it holds."""

    def rebuild(self, connection: Connection) -> None:
        """Make every stored vector searchable (after rows arrived without it: ``db copy``)."""

    def problem(self, engine: Engine) -> str | None:
        """What stops vectors being stored or searched in this store, and what to do; None
        when nothing does."""

    def saved_lag(self, engine: Engine, model: str) -> SavedLag | None:
        """How far the vectors saved beside the store are behind it; None where none are due."""


_BACKENDS = {  # engine name -> "module:class", imported on first use
    "sqlite": "broadsheet.search.vector_sqlite:SqliteVectorBackend",
    "postgresql": "broadsheet.search.vector_pgvector:PgVectorBackend",
}
_loaded: dict[str, VectorBackend] = {}


def for_engine(bind: Engine | Connection) -> VectorBackend:
    """The vector backend of ``bind``'s engine (each imported only when used)."""
    name = bind.dialect.name
    backend = _loaded.get(name)
    if backend is None:
        if name not in _BACKENDS:
            raise ValueError(f"no vector index for the {name!r} engine")
        module, _, cls = _BACKENDS[name].partition(":")
        backend = _loaded[name] = getattr(importlib.import_module(module), cls)()
    return backend


def vectors_of(connection: Connection, model: str, seqs: Iterable[int]) -> dict[int, np.ndarray]:
    """The stored vectors of ``seqs`` for ``model`` (those that have one), read by key."""
    wanted = list(seqs)
    if not wanted:
        return {}
    rows = connection.execute(
        select(paper_vectors.c.paper_seq, paper_vectors.c.vector).where(
            paper_vectors.c.model == model, is_one_of(connection, paper_vectors.c.paper_seq, wanted)
        )
    )
    return {seq: np.frombuffer(blob, dtype=np.float32) for seq, blob in rows}
