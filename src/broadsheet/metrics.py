"""Prometheus metrics: what each process counts, and what the store holds when scraped.

Request counts and latencies, search stages' timings and page-cache lookups are counted by
the process that does the work (any layer may import this module; it imports none of them).
Under several ``serve`` workers prometheus-client's multiprocess mode keeps each worker's
values in files under ``PROMETHEUS_MULTIPROC_DIR``, added up by whichever worker answers a
scrape (``share_between_processes``, called by ``serve`` before the workers start).

The store's sizes, index coverage, the digest outbox and the jobs' last successes are read
from the store at scrape time (``StoreCollector``), at most once per ``STORE_TTL`` seconds, so
a scraper polling every second costs a handful of counts every ten.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, func, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from broadsheet.db.schema import digest_outbox, job_runs, paper_vectors, papers, users

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
STORE_TTL = 10.0  # seconds a scrape reuses the store's counts
SEARCH_STAGES = ("keyword", "embed", "vector", "fuse", "rerank")
JOB_SUCCESS = "ok"  # job_runs.outcome of a run that did its work
log = logging.getLogger(__name__)

# Not in prometheus-client's global registry: each app exposes them through its own
# (``scrape_registry``), so several apps in one process (tests) never clash.
HTTP_REQUESTS = Counter(
    "broadsheet_http_requests",
    "HTTP requests answered, by method, route template and status class.",
    ["method", "route", "status"],
    registry=None,
)
HTTP_DURATION = Histogram(
    "broadsheet_http_request_duration_seconds",
    "Time from a request's arrival to its answer's last byte, by route template.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=None,
)
SEARCH_STAGE_SECONDS = Histogram(
    "broadsheet_search_stage_seconds",
    "Time each stage of a search took: keyword, embed (the query; cached repeats are not "
    "counted), vector, fuse, rerank.",
    ["stage"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=None,
)
PAGE_CACHE_LOOKUPS = Counter(
    "broadsheet_page_cache_lookups",
    "Page-cache lookups, by cache and result (hit or miss).",
    ["cache", "result"],
    registry=None,
)
PROCESS_METRICS = (HTTP_REQUESTS, HTTP_DURATION, SEARCH_STAGE_SECONDS, PAGE_CACHE_LOOKUPS)
for _stage in SEARCH_STAGES:  # every stage is a series from the start, at zero
    SEARCH_STAGE_SECONDS.labels(_stage)


@contextmanager
def search_stage(stage: str) -> Iterator[None]:
    """Time the block as one of search's ``SEARCH_STAGES`` (when it completes: a stage that
    raises, such as the model still loading, is not a timing)."""
    started = time.perf_counter()
    yield
    SEARCH_STAGE_SECONDS.labels(stage).observe(time.perf_counter() - started)


def count_cache_lookup(cache: str, hit: bool) -> None:
    PAGE_CACHE_LOOKUPS.labels(cache, "hit" if hit else "miss").inc()


def share_between_processes() -> str:
    """Before several workers start: the folder where each keeps its values, made afresh (and
    removed when this process exits) unless ``PROMETHEUS_MULTIPROC_DIR`` names one already,
    which should then be empty. Workers started after this count in multiprocess mode."""
    named = os.environ.get(MULTIPROCESS_DIR)
    if named:
        return named
    folder = tempfile.mkdtemp(prefix="broadsheet-metrics-")
    os.environ[MULTIPROCESS_DIR] = folder
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def in_multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROCESS_DIR))


def process_exited() -> None:
    """A worker's shutdown: its live gauges leave the sums (its counters stay in them)."""
    if in_multiprocess_mode():
        multiprocess.mark_process_dead(os.getpid())


def scrape_registry(collectors: Sequence[Collector]) -> CollectorRegistry:
    """What a scrape reads: every worker's values (or this process's), then ``collectors``."""
    registry = CollectorRegistry()
    if in_multiprocess_mode():
        multiprocess.MultiProcessCollector(registry)
    else:
        for metric in PROCESS_METRICS:
            registry.register(metric)
    for collector in collectors:
        registry.register(collector)
    return registry


class StoreCollector:
    """Gauges read from the store when scraped, kept for ``ttl`` seconds.

    Counts and maxima only (papers, vectors, members, the outbox's pending and failed rows,
    each job's latest success); the ``job_runs`` table is looked for once, on the first
    scrape, and its gauge left out where the store has none (a store not migrated yet).
    """

    def __init__(self, engine: Engine, model: str, ttl: float = STORE_TTL):
        self.engine, self.model, self.ttl = engine, model, ttl
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._families: list[Metric] = []
        self._has_jobs: bool | None = None

    def collect(self) -> Iterable[Metric]:
        with self._lock:  # concurrent scrapes wait for one reading
            now = time.monotonic()
            if self._read_at is None or now - self._read_at >= self.ttl:
                self._families = self._read()
                self._read_at = now
            return list(self._families)

    def _read(self) -> list[Metric]:
        readable = GaugeMetricFamily(
            "broadsheet_store_up", "1 when the last scrape could read the store, else 0."
        )
        try:
            families = self._read_store()
        except SQLAlchemyError as exc:
            log.warning("metrics could not read the store: %s", type(exc).__name__)
            readable.add_metric([], 0)
            return [readable]
        readable.add_metric([], 1)
        return [readable, *families]

    def _read_store(self) -> list[Metric]:
        with self.engine.connect() as connection:

            def count(query) -> int:
                return connection.execute(query).scalar_one()

            paper_count = count(select(func.count()).select_from(papers))
            embedded = count(
                select(func.count())
                .select_from(paper_vectors)
                .where(paper_vectors.c.model == self.model)
            )
            members = count(select(func.count()).select_from(users))
            outbox = dict(
                connection.execute(
                    select(digest_outbox.c.status, func.count())
                    .where(digest_outbox.c.status.in_(("pending", "failed")))
                    .group_by(digest_outbox.c.status)
                ).all()
            )
            if self._has_jobs is None:
                self._has_jobs = inspect(connection).has_table(job_runs.name)
            successes = _last_successes(connection) if self._has_jobs else None
        families = [
            _gauge("broadsheet_papers", "Papers in the store.", paper_count),
            _gauge(
                "broadsheet_papers_with_vectors",
                "Papers with a vector for the configured embedding model.",
                embedded,
            ),
            _gauge(
                "broadsheet_index_coverage_ratio",
                "Share of papers with a vector (1 when the store holds none).",
                embedded / paper_count if paper_count else 1.0,
            ),
            _gauge("broadsheet_members", "Member accounts.", members),
            _gauge(
                "broadsheet_digest_outbox_pending",
                "Digests queued and not sent yet (the outbox's depth).",
                outbox.get("pending", 0),
            ),
            _gauge(
                "broadsheet_digest_outbox_failed",
                "Digests whose delivery failed for good (their rows are kept).",
                outbox.get("failed", 0),
            ),
        ]
        if successes is not None:
            last = GaugeMetricFamily(
                "broadsheet_job_last_success_timestamp_seconds",
                "When each job last finished a run that succeeded (Unix time).",
                labels=["job"],
            )
            for job, finished in successes:
                if finished is not None:
                    last.add_metric([job], finished.replace(tzinfo=UTC).timestamp())
            families.append(last)
        return families


def _last_successes(connection: Connection) -> list[tuple[str, datetime | None]]:
    query = (
        select(job_runs.c.job, func.max(job_runs.c.finished_at))
        .where(job_runs.c.outcome == JOB_SUCCESS)
        .group_by(job_runs.c.job)
    )
    return [(job, finished) for job, finished in connection.execute(query).all()]


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
