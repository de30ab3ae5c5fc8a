"""``broadsheet index --workers N``: N processes on this machine embed one store together.

Each process takes every N-th part of the papers (:class:`~broadsheet.search.vectors.Share`)
with its own copy of the model, on its share of the cores; on PostgreSQL each part is also
locked, so runs on other machines take other parts. The parent adds up what each child
reports so one progress bar shows the whole run.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from broadsheet.search.indexing import IndexSummary, index_papers
from broadsheet.search.vectors import Share, coverage

POLL_SECONDS = 0.25
_embedded: Any = None  # the child's handle on the shared count of papers embedded


@dataclass(frozen=True, slots=True)
class IndexJob:
    """What every worker process needs to know to embed its share."""

    database_url: str
    model: str
    device: str = "cpu"
    batch_size: int = 64
    part_size: int = 256
    passages: bool = True


def threads_per_worker(workers: int) -> int:
    """The cores of this machine split evenly between ``workers`` processes (at least one)."""
    return max(1, (os.cpu_count() or 1) // workers)


def _start_child(embedded: Any) -> None:
    global _embedded
    _embedded = embedded


def _count(papers: int) -> None:
    with _embedded.get_lock():
        _embedded.value += papers


def _index_share(job: IndexJob, number: int, of: int) -> int:
    """Embed one share in this child process; the number of papers it embedded."""
    from broadsheet.db.engine import open_store
    from broadsheet.search.embed import load_embedder

    engine = open_store(job.database_url)
    try:
        embedder = load_embedder(job.model, device=job.device, threads=threads_per_worker(of))
        share = Share(number, of)
        summary = index_papers(
            engine,
            embedder,
            job.batch_size,
            _count,
            job.part_size,
            share=share,
            passages=job.passages,
        )
        return summary.embedded
    finally:
        engine.dispose()


def index_in_processes(
    job: IndexJob,
    workers: int,
    progress: Callable[[int], None] | None = None,
) -> IndexSummary:
    """Run ``workers`` child processes over the store; the first error in any stops them all
    and is raised here (what they committed stays)."""
    from broadsheet.db.engine import open_store

    open_store(job.database_url)  # migrated here, once, before any child opens it
    context = multiprocessing.get_context("spawn")  # no copied locks, connections or threads
    embedded = context.Value("q", 0)
    summary = IndexSummary(model=job.model)
    started = time.perf_counter()
    reported = 0

    def report() -> None:
        nonlocal reported
        if progress is not None and embedded.value > reported:
            progress(embedded.value - reported)
            reported = embedded.value

    pool = context.Pool(workers, initializer=_start_child, initargs=(embedded,))
    try:
        results = [
            pool.apply_async(_index_share, (job, number, workers)) for number in range(workers)
        ]
        while not all(result.ready() for result in results):
            failed = [r for r in results if r.ready() and not r.successful()]
            if failed:
                failed[0].get()  # raises the child's error
            time.sleep(POLL_SECONDS)
            report()
        summary.embedded = sum(result.get() for result in results)
        report()
        pool.close()
    finally:
        pool.terminate()
        pool.join()
    summary.seconds = time.perf_counter() - started  # embedding only, as the progress bar
    with open_store(job.database_url).connect() as connection:
        _, summary.total = coverage(connection, job.model)
    return summary
