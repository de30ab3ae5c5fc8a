"""Search latency (lexical, dense, hybrid) and embedding throughput on a synthetic store.

The store holds N synthetic papers whose words follow Zipf's law over a 30,000-word made-up
vocabulary (``bench/snapshot_gen.py``), imported with the real importer, so the FTS5 index is
filled by its triggers. Embedding 100,000 papers with the real model takes hours on a small
machine, so for the latency part every paper gets a SYNTHETIC vector instead: float32, 384
dimensions, L2-normalised, clustered around 200 topic centroids. The centroids are real
embeddings of short texts in the same vocabulary, so the (real) query embeddings meet paper
vectors at cosines of the order real ones do. The vectors are stored with the text hash of
each paper, so the store counts as fully indexed.

Queries: Q distinct queries of 2–6 words drawn by the same law (function words left out). Each
is timed once per retriever, on a warm store (the file has been read once into the page cache,
every query has run once lexically before, and a few warm-up queries have loaded the model and
the vector index). Dense and hybrid timings
include embedding the query with the real model, as a real search must.

Embedding throughput: the default model on S real abstracts (SciFact's corpus where
``../shared/data/scifact`` has it, else synthetic 150-word abstracts).

    python bench/search.py                                 # 100,000 papers, 200 queries
    python bench/search.py --papers 5000 --queries 50 --embed-sample 64
    python bench/search.py --store /tmp/search-100k.db     # build once, reuse afterwards

torch and numpy use OpenMP/BLAS threads that spin while waiting; on a busy machine this can
make one query's embedding ~20x slower. ``OMP_WAIT_POLICY=PASSIVE python bench/search.py``
shows the difference (the policy is printed with the figures).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import TypeVar

import numpy as np
import orjson
from sqlalchemy import Engine, func, select

from broadsheet.db.engine import open_store
from broadsheet.db.schema import papers
from broadsheet.ingest.runner import import_file
from broadsheet.search import hybrid, vector_sqlite
from broadsheet.search.ann import CONNECTIVITY, EXPANSION_ADD, EXPANSION_SEARCH
from broadsheet.search.embed import DEFAULT_MODEL, load_embedder, load_query_embedder
from broadsheet.search.hybrid import CANDIDATES, SearchRequest, search_papers
from broadsheet.search.lexical import lexical_search
from broadsheet.search.vectors import (
    coverage,
    pending_papers,
    save_graph,
    store_vectors,
    vector_index,
)

sys.path.insert(0, str(Path(__file__).parent))
from snapshot_gen import ZipfVocabulary, write_snapshot

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact" / "corpus.jsonl"
TOPICS = 200
TOPIC_WORDS = 12  # words in each text whose embedding is a topic centroid
NOISE = 0.045  # per dimension: a paper vector's cosine to its centroid is about 0.75
WARM_UP = 5
T = TypeVar("T")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _batched(items: Iterator[T], size: int) -> Iterator[list[T]]:
    while batch := list(islice(items, size)):
        yield batch


def paper_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(papers)).scalar_one()


def import_papers(engine: Engine, count: int, vocabulary: ZipfVocabulary, where: Path) -> dict:
    """Generate ``count`` snapshot lines and import them; seconds of each step."""
    with tempfile.TemporaryDirectory(dir=where) as scratch:
        _log(f"generating {count:,} snapshot lines (Zipf vocabulary) ...")
        started = time.perf_counter()
        snapshot = write_snapshot(Path(scratch) / "snapshot.jsonl", count, vocabulary=vocabulary)
        generated = time.perf_counter()
        _log("importing ...")
        summary = import_file(engine, snapshot)
        imported = time.perf_counter()
    if summary.added != count or summary.errors:
        raise SystemExit(f"import stored {summary.added:,} of {count:,} papers: {summary}")
    return {"snapshot": generated - started, "import": imported - generated}


def topic_centroids(vocabulary: ZipfVocabulary, seed: int) -> np.ndarray:
    """Real embeddings of short texts in the vocabulary: where queries in it land too."""
    rng = random.Random(seed)
    texts = [vocabulary.sentence(rng, TOPIC_WORDS) for _ in range(TOPICS)]
    return load_embedder().encode(texts)


def store_synthetic_vectors(
    engine: Engine, model: str, centroids: np.ndarray, seed: int, chunk: int = 5000
) -> int:
    """A clustered unit vector for every paper without a current one; how many were stored."""
    rng = np.random.default_rng(seed)
    stored = 0
    # one connection reads (its snapshot is unaffected by the writes: WAL), others write
    with engine.connect() as reader:
        # PendingPaper(seq, paper_text(title, abstract), text_hash(text)): as `index` makes
        for pending in _batched(pending_papers(reader, model), chunk):
            topics = rng.integers(0, len(centroids), len(pending))
            noise = rng.standard_normal((len(pending), centroids.shape[1]), dtype=np.float32)
            vectors = centroids[topics] + NOISE * noise
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            with engine.begin() as writer:
                store_vectors(writer, model, pending, vectors.astype(np.float32))
            stored += len(pending)
    return stored


def make_queries(vocabulary: ZipfVocabulary, count: int, seed: int, avoid=()) -> list[str]:
    rng = random.Random(seed)
    seen, queries = set(avoid), []
    while len(queries) < count:
        query = " ".join(vocabulary.draw_content(rng, rng.randint(2, 6)))
        if query not in seen:
            seen.add(query)
            queries.append(query)
    return queries


def timed(run: Callable[[str], object], queries: Sequence[str]) -> tuple[list[float], list]:
    """Milliseconds of ``run(query)`` for each query, and what it returned."""
    times, results = [], []
    for query in queries:
        started = time.perf_counter()
        result = run(query)
        times.append((time.perf_counter() - started) * 1000)
        results.append(result)
    return times, results


def summary_row(label: str, times: Sequence[float]) -> tuple[str, int, float, float, float, float]:
    p50, p95, p99 = np.percentile(times, [50, 95, 99])
    return label, len(times), float(p50), float(p95), float(p99), float(np.mean(times))


def embedding_texts(count: int, vocabulary: ZipfVocabulary) -> tuple[list[str], str]:
    if SCIFACT.exists():
        texts = []
        with SCIFACT.open("rb") as handle:
            for line in islice(handle, count):
                document = orjson.loads(line)
                texts.append(f"{document['title']}. {document['text']}")
        return texts, f"SciFact corpus, first {len(texts):,} documents (title. text)"
    rng = random.Random(5)
    texts = [
        vocabulary.sentence(rng, 10).capitalize() + ". " + vocabulary.sentence(rng, 150)
        for _ in range(count)
    ]
    return texts, f"{count:,} synthetic 150-word abstracts (SciFact not found at {SCIFACT})"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000, help="papers in the store")
    parser.add_argument("--queries", type=int, default=200, help="distinct timed queries")
    parser.add_argument("--embed-sample", type=int, default=512, help="texts for throughput")
    parser.add_argument("--store", type=Path, help="SQLite file to build, or reuse if it has N")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    import torch  # after broadsheet's imports, as in the application

    cores = os.cpu_count() or 1
    print(
        f"machine: {platform.machine()}, {_cpu_name()}, {cores} cores,"
        f" Python {platform.python_version()}, SQLite {sqlite3.sqlite_version},"
        f" torch {torch.__version__} ({torch.get_num_threads()} threads,"
        f" OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')})"
    )
    print(f"load average at start: {_load()}")
    if os.getloadavg()[0] > cores / 2:
        print("WARNING: the machine is busy; figures (the model's above all) will be noisy")
    vocabulary = ZipfVocabulary()
    model = DEFAULT_MODEL

    with tempfile.TemporaryDirectory() as scratch:
        path = args.store or Path(scratch) / "search.db"
        engine = open_store(f"sqlite:///{path}")
        built: dict[str, float] = {}
        existing = paper_count(engine)
        if existing == 0:
            built = import_papers(engine, args.papers, vocabulary, path.parent)
        elif existing != args.papers:
            raise SystemExit(f"{path} holds {existing:,} papers, not {args.papers:,}")

        _log("loading the embedding model ...")
        started = time.perf_counter()
        embedder = load_embedder(model)  # for documents (throughput)
        query_embedder = load_query_embedder(model)  # what search uses
        model_seconds = time.perf_counter() - started

        with engine.connect() as connection:
            embedded, total = coverage(connection, model)
        if embedded < total:
            _log(f"storing synthetic vectors for {total - embedded:,} papers ...")
            started = time.perf_counter()
            centroids = topic_centroids(vocabulary, args.seed)
            store_synthetic_vectors(engine, model, centroids, args.seed)
            built["vectors"] = time.perf_counter() - started
            with engine.connect() as connection:
                embedded, total = coverage(connection, model)
        if embedded != total or total != args.papers:
            raise SystemExit(f"store has vectors for {embedded:,} of {total:,} papers")

        _log("saving the HNSW vector graph (as `broadsheet index` does) ...")
        started = time.perf_counter()
        graph_size = save_graph(engine, model)
        graph_seconds = time.perf_counter() - started
        vector_sqlite._indexes.clear()  # load everything back as a fresh process would

        _log("loading the vector index ...")
        started = time.perf_counter()
        index = vector_index(engine, model)
        index_seconds = time.perf_counter() - started

        warm_up = make_queries(vocabulary, WARM_UP, args.seed + 2)
        queries = make_queries(vocabulary, args.queries, args.seed + 1, avoid=warm_up)
        for query in warm_up:
            hybrid._query_vector.cache_clear()
            search_papers(engine, SearchRequest(query))
            index.search(query_embedder.encode([query])[0], CANDIDATES)
        _log("warming the store (file read once into the page cache, every query run once) ...")
        with path.open("rb") as handle:
            while handle.read(1 << 24):
                pass
        with engine.connect() as connection:
            for query in queries:
                lexical_search(connection, query, CANDIDATES, papers_count=args.papers)

        _log(f"timing {len(queries)} queries ...")
        rows = []
        with engine.connect() as connection:
            lexical_ms, lexical_hits = timed(
                lambda q: lexical_search(connection, q, CANDIDATES), queries
            )
        rows.append(summary_row(f"lexical: BM25 top {CANDIDATES}, every term", lexical_ms))
        with engine.connect() as connection:
            pruned_ms, _ = timed(
                lambda q: lexical_search(connection, q, CANDIDATES, papers_count=args.papers),
                queries,
            )
        rows.append(summary_row("lexical as search runs it (common terms pruned)", pruned_ms))

        embed_ms, query_vectors = timed(lambda q: query_embedder.encode([q])[0], queries)
        rows.append(summary_row("  query embedding alone (real model)", embed_ms))
        vectors_of = dict(zip(queries, query_vectors, strict=True))
        search_ms, dense_hits = timed(lambda q: index.search(vectors_of[q], CANDIDATES), queries)
        how = "HNSW graph + exact re-scoring" if index.uses_graph else "exact scan"
        rows.append(summary_row(f"  vector search alone ({how}), top {CANDIDATES}", search_ms))
        graph, index.graph = index.graph, None  # the exact scan, for comparison and recall
        exact_ms, exact_hits = timed(lambda q: index.search(vectors_of[q], CANDIDATES), queries)
        index.graph = graph
        rows.append(summary_row(f"  exact scan of every vector, top {CANDIDATES}", exact_ms))
        recall = np.mean(
            [
                len({s for s, _ in got} & {s for s, _ in want}) / max(1, len(want))
                for got, want in zip(dense_hits, exact_hits, strict=True)
            ]
        )

        def count_coverage(_query: str) -> tuple[int, int]:
            with engine.connect() as connection:
                return coverage(connection, model)

        coverage_ms, _ = timed(count_coverage, queries)
        rows.append(summary_row("  coverage() count (each hybrid query)", coverage_ms))

        def dense(query: str) -> list[tuple[int, float]]:
            vector = query_embedder.encode([query])[0]
            return vector_index(engine, model).search(vector, CANDIDATES)

        dense_ms, _ = timed(dense, queries)
        rows.append(summary_row("dense: embed + index refresh + search", dense_ms))

        def hybrid_search(query: str):
            hybrid._query_vector.cache_clear()  # the query is embedded inside the timing
            return search_papers(engine, SearchRequest(query))

        hybrid_ms, results = timed(hybrid_search, queries)
        rows.append(summary_row("hybrid: search_papers end to end", hybrid_ms))
        store_mb = (
            sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
            / 1e6
        )
        engine.dispose()

    _log("embedding throughput ...")
    texts, source = embedding_texts(args.embed_sample, vocabulary)
    tokens = embedder.model.tokenizer(texts, truncation=True, max_length=256)["input_ids"]
    embedder.encode(texts[:8], batch_size=64)  # warm up the batch shapes
    started = time.perf_counter()
    embedder.encode(texts, batch_size=64)
    embed_seconds = time.perf_counter() - started

    if "import" in built:
        total_built = sum(built.values())
        steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in built.items())
        print(
            f"store: {args.papers:,} papers, {store_mb:,.0f} MB,"
            f" built in {total_built:.1f} s ({steps})"
        )
    else:
        extra = f" (synthetic vectors added in {built['vectors']:.1f} s)" if built else ""
        print(f"store: {args.papers:,} papers, {store_mb:,.0f} MB, reused {path}{extra}")
    if "vectors" in built:
        vectors_are = f"SYNTHETIC (clustered unit vectors around {TOPICS} topics), stored now"
    else:
        vectors_are = "those found in the store (SYNTHETIC if this script built it)"
    print(f"vectors for the latency figures: {vectors_are}; coverage {embedded:,}/{total:,}")
    print(
        f"vector index: {len(index):,} x {index.matrix.shape[1]} float32 ="
        f" {index.matrix.nbytes / 2**20:.1f} MiB matrix (+ {index.seqs.nbytes / 2**20:.2f} MiB"
        f" ids), loaded in {index_seconds:.2f} s; model {model} ({embedder.backend}) loaded in"
        f" {model_seconds:.1f} s"
    )
    if graph_size:
        print(
            f"HNSW graph (usearch, f16, M={CONNECTIVITY}, ef_add={EXPANSION_ADD},"
            f" ef_search={EXPANSION_SEARCH}): {graph_size:,} vectors, saved in"
            f" {graph_seconds:.1f} s; recall@{CANDIDATES} against the exact scan {recall:.4f}"
        )
    else:
        print("no HNSW graph (store below the threshold): exact vector search")
    terms = np.mean([len(q.split()) for q in queries])
    top = np.mean([hits[0][1] for hits in dense_hits if hits])
    last = np.mean([hits[-1][1] for hits in dense_hits if hits])
    print(
        f"queries: {len(queries)} distinct, {terms:.1f} words on average; per query on average"
        f" {np.mean([len(h) for h in lexical_hits]):.0f} lexical candidates, dense cosine"
        f" {top:.2f} (best) to {last:.2f} (candidate {CANDIDATES}),"
        f" {np.mean([r.total for r in results]):.0f} hybrid results above the cut-off"
    )
    modes = {r.mode.value for r in results}
    notices = {r.notice for r in results if r.notice}
    if modes != {"hybrid"} or notices:
        print(f"WARNING: hybrid searches ran as {modes}, notices: {notices}")
    print()
    print(f"{'latency, ms':<40} {'count':>5} {'p50':>8} {'p95':>8} {'p99':>8} {'mean':>8}")
    for label, count, p50, p95, p99, mean in rows:
        print(f"{label:<40} {count:>5} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f} {mean:>8.1f}")
    print(f"hybrid p50 / lexical p50: {rows[-1][2] / rows[0][2]:.1f}x")
    print()
    print(f"embedding throughput ({model}, batch 64, {torch.get_num_threads()} threads): {source}")
    print(
        f"  {len(texts):,} texts in {embed_seconds:.1f} s = {len(texts) / embed_seconds:,.1f}"
        f" papers/s; {np.mean([len(t) for t in tokens]):.0f} tokens per text on average"
        f" (special tokens included, capped at 256)"
    )
    print(f"load average at end: {_load()}")


if __name__ == "__main__":
    main()
