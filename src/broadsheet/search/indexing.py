"""Build or update the vectors of the papers that lack them (``broadsheet index``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice

from sqlalchemy import Engine

from broadsheet.db.work_locks import holding_part
from broadsheet.search.embed import Embedder
from broadsheet.search.vectors import (
    PendingPaper,
    Share,
    coverage,
    pending_papers,
    store_vectors,
)

WINDOW = 2048  # papers read at a time: an interrupted run keeps what it committed
PART = 256  # papers numbered alike (seq // PART) form a part, embedded and committed together
WAIT_FOR_OTHERS = 0.5  # seconds between looks while other processes hold every part left


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


def _embed_part(
    engine: Engine,
    embedder: Embedder,
    seqs: range,
    batch_size: int,
    progress: Callable[[int], None] | None,
) -> int:
    """Embed the papers numbered in ``seqs`` still pending, read again under the part's lock:
    another process may have finished them since the window was read."""
    with engine.connect() as connection:
        pending = list(pending_papers(connection, embedder.name, seqs=seqs))
    if not pending:
        return 0
    vectors = embedder.encode([p.text for p in pending], batch_size=batch_size, progress=progress)
    with engine.begin() as connection:
        store_vectors(connection, embedder.name, pending, vectors)
    return len(pending)


def index_papers(
    engine: Engine,
    embedder: Embedder,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
    part_size: int = PART,
    share: Share | None = None,
) -> IndexSummary:
    """Embed every paper whose vector for this model is missing or stale; never re-embed others.

    The papers are read once, in seq order, a window at a time; parts that another process
    held are looked at again once the rest is done. ``share`` takes only some of the parts
    (one process of ``index --workers N``).
    """
    summary = IndexSummary(model=embedder.name)
    started = time.perf_counter()
    job = f"index:{embedder.name}"
    after, held_elsewhere = -1, None
    while True:
        with engine.connect() as connection:
            window: list[PendingPaper] = list(
                islice(
                    pending_papers(
                        connection, embedder.name, after=after, share=share, part_size=part_size
                    ),
                    WINDOW,
                )
            )
        if not window:
            if held_elsewhere is None:
                break
            # wait for other processes' parts: they are done, or they died and are ours now
            time.sleep(WAIT_FOR_OTHERS)
            after, held_elsewhere = held_elsewhere * part_size - 1, None
            continue
        for part in sorted({paper.seq // part_size for paper in window}):
            with holding_part(engine, job, part) as held:
                if held:
                    seqs = range(part * part_size, (part + 1) * part_size)
                    summary.embedded += _embed_part(engine, embedder, seqs, batch_size, progress)
                elif held_elsewhere is None:  # another process embeds these
                    held_elsewhere = part
            after = (part + 1) * part_size - 1
    with engine.connect() as connection:
        _, summary.total = coverage(connection, embedder.name)
    summary.seconds = time.perf_counter() - started
    return summary
