"""Build or update the vectors of the papers that lack them (``broadsheet index``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice

from sqlalchemy import Engine

from broadsheet.search.embed import Embedder
from broadsheet.search.vectors import PendingPaper, coverage, pending_papers, store_vectors

WINDOW = 2048  # papers embedded and committed together: an interrupted run keeps its windows


@dataclass(slots=True)
class IndexSummary:
    model: str
    embedded: int = 0
    total: int = 0
    seconds: float = 0.0

    @property
    def papers_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds else 0.0


def count_pending(engine: Engine, model: str) -> int:
    with engine.connect() as connection:
        return sum(1 for _ in pending_papers(connection, model))


def index_papers(
    engine: Engine,
    embedder: Embedder,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> IndexSummary:
    """Embed every paper whose vector for this model is missing or stale; never re-embed others."""
    summary = IndexSummary(model=embedder.name)
    started = time.perf_counter()
    while True:
        with engine.connect() as connection:
            window: list[PendingPaper] = list(
                islice(pending_papers(connection, embedder.name), WINDOW)
            )
        if not window:
            break
        vectors = embedder.encode(
            [p.text for p in window], batch_size=batch_size, progress=progress
        )
        with engine.begin() as connection:
            store_vectors(connection, embedder.name, window, vectors)
        summary.embedded += len(window)
    with engine.connect() as connection:
        _, summary.total = coverage(connection, embedder.name)
    summary.seconds = time.perf_counter() - started
    return summary
