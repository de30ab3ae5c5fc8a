"""Build or update the vectors of the papers that lack them (``broadsheet index``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice, pairwise

import numpy as np
from sqlalchemy import Engine

from broadsheet.db.work_locks import holding_part
from broadsheet.search.embed import Embedder
from broadsheet.search.passages import store_passages
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


def count_pending(engine: Engine, model: str, passages: bool = True) -> int:
    with engine.connect() as connection:
        return sum(1 for _ in pending_papers(connection, model, passages=passages))


def _embed_part(
    engine: Engine,
    embedder: Embedder,
    seqs: range,
    batch_size: int,
    progress: Callable[[int], None] | None,
    passages: bool = True,
) -> int:
    """Embed the papers numbered in ``seqs`` still pending, read again under the part's lock:
    another process may have finished them since the window was read. Their vectors and their
    passages' vectors are committed together."""
    with engine.connect() as connection:
        pending = list(pending_papers(connection, embedder.name, seqs=seqs, passages=passages))
    if not pending:
        return 0
    stale = [p for p in pending if p.text is not None]
    with_passages = [p for p in pending if p.passages is not None]
    # the part's papers are reported as its texts (papers' own, then their sentences) are done
    texts = len(stale) + sum(len(p.passages or ()) for p in with_passages)
    counted = _papers_counter(len(pending), progress)
    embedded = 0

    def texts_done(count: int) -> None:
        nonlocal embedded
        embedded += count
        counted(embedded / texts)

    vectors = (
        embedder.encode([p.text for p in stale], batch_size=batch_size, progress=texts_done)
        if stale
        else None
    )
    matrices = _embed_passages(embedder, with_passages, batch_size, texts_done)
    with engine.begin() as connection:
        store_vectors(connection, embedder.name, stale, vectors)
        store_passages(
            connection, embedder.name, [(p.seq, p.passages_hash) for p in with_passages], matrices
        )
    counted(None)
    return len(pending)


def _papers_counter(
    papers: int, progress: Callable[[int], None] | None
) -> Callable[[float | None], None]:
    """Reports a part's papers to ``progress`` as the share of its work done grows (a share
    in [0, 1]; None: all of it)."""
    reported = 0

    def advance(share: float | None) -> None:
        nonlocal reported
        done = papers if share is None else min(papers, int(papers * share))
        if progress is not None and done > reported:
            progress(done - reported)
        reported = max(reported, done)

    return advance


def _embed_passages(
    embedder: Embedder,
    pending: list[PendingPaper],
    batch_size: int,
    progress: Callable[[int], None],
) -> list[np.ndarray]:
    """Each paper's passages embedded: one matrix per paper, a row per passage."""
    flat = [passage for paper in pending for passage in paper.passages or ()]
    if not flat:
        return [np.zeros((0, 0), dtype=np.float32) for _ in pending]
    vectors = embedder.encode(flat, batch_size=batch_size, progress=progress)
    bounds = np.cumsum([0] + [len(paper.passages or ()) for paper in pending])
    return [vectors[start:stop] for start, stop in pairwise(bounds)]


def index_papers(
    engine: Engine,
    embedder: Embedder,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
    part_size: int = PART,
    share: Share | None = None,
    passages: bool = True,
) -> IndexSummary:
    """Embed every paper whose vector for this model is missing or stale; never re-embed others.

    The papers are read once, in seq order, a window at a time; parts that another process
    held are looked at again once the rest is done. ``share`` takes only some of the parts
    (one process of ``index --workers N``). ``passages``: also each abstract's sentences.
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
                        connection,
                        embedder.name,
                        after=after,
                        share=share,
                        part_size=part_size,
                        passages=passages,
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
                    summary.embedded += _embed_part(
                        engine, embedder, seqs, batch_size, progress, passages
                    )
                elif held_elsewhere is None:  # another process embeds these
                    held_elsewhere = part
            after = (part + 1) * part_size - 1
    summary.seconds = time.perf_counter() - started  # embedding only, as the progress bar
    with engine.connect() as connection:
        _, summary.total = coverage(connection, embedder.name)
    return summary
