"""Topic queries on the shared daily papers: how many results search shows, how many of them are
on the topic, and how many of the topic's papers it finds, with the relevance cut-off as it was
and as it is, side by side.

The labels are ``bench/topic_queries.tsv`` (query, paper id, relevance): 1 for a paper about
the topic, judged by reading titles and abstracts; 0 rows record papers read and judged off the
topic (those that merely hold the words). A paper not listed counts as off the topic. Three
queries name techniques no paper of the set is about ("layer normalization", "logit
normalization", "pooling for set aggregation"): they have no relevant paper, and whatever they
show counts against precision.

"before" is the cut-off without its every-word rule (a keyword candidate holding every word of
the query passes); what was below the cut-off was dropped then. "after" is search as it is;
"less close" counts what it offers below the cut-off on request (``more``), and "R with more"
is the recall of the whole list then.

The store is the daily papers imported and embedded (``broadsheet import`` + ``index``), once
into a cache file and reused; ``--store`` names another (a SQLite file or a database URL).

``--scifact DIR`` also runs SciFact's test claims through search as it shows results (the
cut-off applied, spelling left alone), before and after, and gives nDCG@10 of those lists:
``broadsheet eval beir`` ranks every candidate and so cannot see a cut-off. Its store is the one
``broadsheet eval beir`` caches (``--scifact-store`` names another).

    python bench/topic_search.py                                  # all 753 papers
    python bench/topic_search.py --scifact ../shared/data/scifact
    python bench/topic_search.py --papers 60 --store /tmp/t.db    # a tiny run (bench/smoke.sh)
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
from sqlalchemy import Engine, select

from broadsheet.config import cache_dir
from broadsheet.db.engine import open_store
from broadsheet.db.schema import papers
from broadsheet.ingest.runner import import_file
from broadsheet.search import evaluate, hybrid
from broadsheet.search.embed import DEFAULT_MODEL, load_embedder
from broadsheet.search.hybrid import SearchRequest, SearchResults, search_papers
from broadsheet.search.indexing import index_papers
from broadsheet.sources import beir

DAILY = Path(__file__).resolve().parents[2] / "shared" / "data" / "hf-daily-papers"
QRELS = Path(__file__).resolve().parent / "topic_queries.tsv"
EVERYTHING = 10_000  # a limit no list reaches: every result shown, on one page


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Each query's judged papers (in the file's order of queries)."""
    judged: dict[str, dict[str, int]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            judged.setdefault(row["query"], {})[row["paper_id"]] = int(row["relevance"])
    return judged


def prepare_store(store: str, source: Path, count: int | None) -> Engine:
    """The daily papers (the first ``count`` of them) imported and embedded into ``store``;
    what is there already is kept."""
    engine = open_store(store if "://" in store else f"sqlite:///{store}")
    with tempfile.TemporaryDirectory() as scratch:
        if count is not None:
            entries = orjson.loads(source.read_bytes())[:count]
            source = Path(scratch) / "daily_papers.json"
            source.write_bytes(orjson.dumps(entries))
        import_file(engine, source)
    started = time.perf_counter()
    indexed = index_papers(engine, load_embedder(DEFAULT_MODEL))
    if indexed.embedded:
        print(f"embedded {indexed.embedded:,} papers in {time.perf_counter() - started:.0f} s")
    return engine


@contextmanager
def cutoff_before() -> Iterator[None]:
    """Search with the cut-off as it was: no paper passes for holding every word."""
    rule = hybrid.holding_every_word
    hybrid.holding_every_word = lambda connection, query, seqs: set()
    try:
        yield
    finally:
        hybrid.holding_every_word = rule


@dataclass(slots=True)
class Measured:
    shown: int
    hits: int  # relevant papers among those shown
    precision: float | None
    recall: float | None
    ms: float


def measure(
    engine: Engine, query: str, relevant: set[str], more: bool = False
) -> tuple[Measured, SearchResults]:
    started = time.perf_counter()
    results = search_papers(engine, SearchRequest(query, limit=EVERYTHING, more=more))
    ms = (time.perf_counter() - started) * 1000
    shown = {hit.paper["id"] for hit in results.hits}
    hits = len(shown & relevant)
    precision = hits / len(shown) if shown else None
    recall = hits / len(relevant) if relevant else None
    return Measured(len(shown), hits, precision, recall, ms), results


def ratio(value: float | None) -> str:
    return "  -" if value is None else f"{value:.2f}"


def scifact(directory: Path, store: str | None) -> None:
    """nDCG@10 of the lists search shows for SciFact's test claims, before and after."""
    split = evaluate.load_split(directory, "test")
    path = store or evaluate.default_store_path(directory, DEFAULT_MODEL)
    engine, _, _ = evaluate.prepare_store(directory, DEFAULT_MODEL, path)
    for name in ("before", "after"):
        run, lengths = {}, []
        for query_id, claim in split.queries.items():
            request = SearchRequest(claim, limit=evaluate.RUN_DEPTH, spell=False)
            if name == "before":
                with cutoff_before():
                    results = search_papers(engine, request)
            else:
                results = search_papers(engine, request)
            lengths.append(results.total)
            ranked = [beir.doc_id(hit.paper["id"]) for hit in results.hits]
            run[query_id] = {doc: float(len(ranked) - at) for at, doc in enumerate(ranked)}
        scores = evaluate.measure(split.qrels, run)
        print(
            f"SciFact test ({len(split.queries)} claims), {name}: nDCG@10 {scores['nDCG@10']:.4f},"
            f" R@100 {scores['R@100']:.4f}; results shown per claim: mean"
            f" {statistics.mean(lengths):.1f}, median {statistics.median(lengths):.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="SQLite file or database URL (default: a cache file)")
    parser.add_argument("--papers", type=int, help="Import only the first N daily papers")
    parser.add_argument("--qrels", type=Path, default=QRELS)
    parser.add_argument("--scifact", type=Path, help="A BEIR SciFact folder: measure it too")
    parser.add_argument("--scifact-store", help="Its store (default: eval beir's cache)")
    args = parser.parse_args()
    source = DAILY / "daily_papers.json"
    if not source.exists():
        print(f"skipped: shared data not found at {source}")
        return
    store = args.store or str(cache_dir("bench") / f"topic-daily-{DEFAULT_MODEL}.db")
    engine = prepare_store(store, source, args.papers)
    with engine.connect() as connection:
        stored = set(connection.execute(select(papers.c.id)).scalars())
    judged = load_qrels(args.qrels)
    for query in judged:  # load the model and warm the caches outside the timings
        search_papers(engine, SearchRequest(query))

    print(f"{len(stored):,} papers; relevant: labelled papers on the topic that are in the store")
    print(
        f"{'query':<44} {'rel':>4} | {'before: shown':>13} {'P':>5} {'R':>5} |"
        f" {'after: shown':>12} {'P':>5} {'R':>5} | {'less close':>10} {'R with more':>11}"
    )
    totals = {"relevant": 0, "before": [0, 0], "after": [0, 0], "more": [0, 0]}
    timings: dict[str, list[float]] = {"before": [], "after": []}
    for query, labels in judged.items():
        relevant = {pid for pid, grade in labels.items() if grade > 0 and pid in stored}
        with cutoff_before():
            before, _ = measure(engine, query, relevant)
        after, results = measure(engine, query, relevant)
        with_more, _ = measure(engine, query, relevant, more=True)
        timings["before"].append(before.ms)
        timings["after"].append(after.ms)
        totals["relevant"] += len(relevant)
        for name, measured in (("before", before), ("after", after), ("more", with_more)):
            totals[name][0] += measured.shown
            totals[name][1] += measured.hits
        print(
            f"{query:<44} {len(relevant):>4} | {before.shown:>13} {ratio(before.precision):>5}"
            f" {ratio(before.recall):>5} | {after.shown:>12} {ratio(after.precision):>5}"
            f" {ratio(after.recall):>5} | {results.less_close:>10}"
            f" {ratio(with_more.recall):>11}"
        )

    def micro(name: str) -> tuple[str, str]:
        shown, hits = totals[name]
        recall = hits / totals["relevant"] if totals["relevant"] else None
        return ratio(hits / shown if shown else None), ratio(recall)

    (p_before, r_before), (p_after, r_after), (_, r_more) = map(micro, ("before", "after", "more"))
    less_close = totals["more"][0] - totals["after"][0]
    print(
        f"{'all queries':<44} {totals['relevant']:>4} | {totals['before'][0]:>13} {p_before:>5}"
        f" {r_before:>5} | {totals['after'][0]:>12} {p_after:>5} {r_after:>5} |"
        f" {less_close:>10} {r_more:>11}"
    )
    print(
        "search ms, median of the queries: "
        f"before {statistics.median(timings['before']):.1f}, "
        f"after {statistics.median(timings['after']):.1f}"
    )
    if args.scifact:
        scifact(args.scifact, args.scifact_store)


if __name__ == "__main__":
    main()
