"""Reranking by passages on SciFact: the shares tuned on the train split, the test split
reported, and what the second stage costs a search.

The corpus and its sentences are embedded once into `broadsheet eval beir`'s cached store
(minutes the first time). Each line of the grid is hybrid nDCG@10 with the head of the fused
list reordered by LEXICAL / DENSE / PASSAGE shares; the chosen line is then measured on the
test split. The timings are the rerank step alone (reading and scoring the head's passages)
and whole hybrid searches with and without it, over the test queries.

    python bench/rerank.py
    python bench/rerank.py --docs 200 --queries 10 --grid small   # a tiny run (bench/smoke.sh)
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

from broadsheet.search import evaluate, hybrid, rerank
from broadsheet.search.embed import DEFAULT_MODEL
from broadsheet.search.fusion import DENSE_WEIGHT, fuse
from broadsheet.search.hybrid import Mode, SearchRequest, search_papers

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"
GRIDS = {
    "full": {
        "shares": [
            (lexical, dense, round(1.0 - lexical - dense, 2))
            for lexical, dense in itertools.product((0.3, 0.35, 0.4, 0.45, 0.5), (0.0, 0.1, 0.2))
        ],
        "tops": (20, 30, 50, 100),
    },
    "small": {"shares": [(0.4, 0.1, 0.5), (0.6, 0.4, 0.0)], "tops": (50,)},
}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def hybrid_ndcg(engine, split, candidates, shares, top, exact=None) -> float:
    rerank.LEXICAL_SHARE, rerank.DENSE_SHARE, rerank.PASSAGE_SHARE = shares
    rerank.RERANK_TOP = top
    if exact is not None:
        rerank.EXACT_SHARE = exact
    doc_ids = evaluate._doc_ids(engine)
    run = evaluate.make_run(
        engine, candidates, doc_ids, Mode.hybrid, DENSE_WEIGHT, DEFAULT_MODEL, split.queries
    )
    return evaluate.measure(split.qrels, run)["nDCG@10"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="a BEIR SciFact folder")
    parser.add_argument("--queries", type=int, default=0, help="only the first N (0: all)")
    parser.add_argument(
        "--docs", type=int, default=0, help="a scratch store of the first N documents (0: all)"
    )
    parser.add_argument("--grid", choices=sorted(GRIDS), default="full")
    args = parser.parse_args()
    if not (args.data / "corpus.jsonl").exists():
        print(f"skipped: SciFact not found at {args.data} (it sits beside the repository)")
        return
    with tempfile.TemporaryDirectory(prefix="bench-rerank-") as scratch:
        data, store = args.data, evaluate.default_store_path(args.data, DEFAULT_MODEL)
        if args.docs:
            data, store = first_documents(args.data, args.docs, Path(scratch))
        measure_rerank(args, data, store)


def first_documents(data: Path, count: int, scratch: Path) -> tuple[Path, Path]:
    """A BEIR folder holding the first ``count`` documents of ``data``, and a store for it."""
    folder = scratch / "beir"
    folder.mkdir()
    with (data / "corpus.jsonl").open() as source, (folder / "corpus.jsonl").open("w") as kept:
        kept.writelines(itertools.islice(source, count))
    (folder / "queries.jsonl").symlink_to(data / "queries.jsonl")
    (folder / "qrels").symlink_to(data / "qrels")
    return folder, scratch / "store.db"


def measure_rerank(args: argparse.Namespace, data: Path, store: Path) -> None:
    chosen = (rerank.LEXICAL_SHARE, rerank.DENSE_SHARE, rerank.PASSAGE_SHARE), rerank.RERANK_TOP
    engine, _, indexed = evaluate.prepare_store(data, DEFAULT_MODEL, store)
    print(f"store {store}: {indexed.total:,} papers, {indexed.embedded:,} embedded now")
    splits = {}
    for name in ("train", "test"):
        split = evaluate.load_split(data, name)
        if args.queries:
            kept = dict(itertools.islice(split.queries.items(), args.queries))
            split = evaluate.BeirSplit(kept, {q: split.qrels[q] for q in kept})
        splits[name] = (split, evaluate.collect_candidates(engine, split, DEFAULT_MODEL))

    train, train_candidates = splits["train"]
    grid = GRIDS[args.grid]
    print("\nshares (lexical / dense / passage), head reranked: train nDCG@10")
    rows = []
    for shares, top in itertools.product(grid["shares"], grid["tops"]):
        score = hybrid_ndcg(engine, train, train_candidates, shares, top)
        rows.append((score, shares, top))
        print(f"  {shares[0]:.2f} / {shares[1]:.2f} / {shares[2]:.2f}  top {top:>3}: {score:.4f}")
    best = max(rows, key=lambda row: row[0])
    print(f"best on train: {best[1]} top {best[2]} → {best[0]:.4f}")
    in_use = rerank.EXACT_SHARE
    print("\nshare of the query's words held as written, added to the shares in use: train nDCG@10")
    for exact in (0.0, 0.05, 0.1, 0.2):
        score = hybrid_ndcg(engine, train, train_candidates, chosen[0], chosen[1], exact)
        print(f"  exact words × {exact:.2f}: {score:.4f}")
    rerank.EXACT_SHARE = in_use

    test, test_candidates = splits["test"]
    fused_only = evaluate.measure(
        test.qrels,
        evaluate.make_run(
            engine, test_candidates, evaluate._doc_ids(engine), Mode.hybrid, DENSE_WEIGHT
        ),
    )["nDCG@10"]
    print(f"\ntest: fused only {fused_only:.4f}")
    for label, (shares, top) in (("in use", chosen), ("best on train", (best[1], best[2]))):
        score = hybrid_ndcg(engine, test, test_candidates, shares, top)
        print(f"test: reranked, {label} {shares} top {top}: {score:.4f}")
    (rerank.LEXICAL_SHARE, rerank.DENSE_SHARE, rerank.PASSAGE_SHARE), rerank.RERANK_TOP = chosen

    step = []
    for found in test_candidates.values():
        ranked = fuse(found.lexical, found.dense)
        started = time.perf_counter()
        rerank.rerank(engine, DEFAULT_MODEL, ranked, found.query_vector)
        step.append((time.perf_counter() - started) * 1000)
    print(f"\nrerank step, ms: p50 {percentile(step, 0.5):.2f}  p99 {percentile(step, 0.99):.2f}")
    search_papers(engine, SearchRequest("warm up"))
    for label, top in (("hybrid search, reranked", chosen[1]), ("hybrid search, fused only", 0)):
        rerank.RERANK_TOP = top
        hybrid._query_vector.cache_clear()  # each run embeds its queries
        times = []
        for query in test.queries.values():
            started = time.perf_counter()
            search_papers(engine, SearchRequest(query))
            times.append((time.perf_counter() - started) * 1000)
        print(f"{label}, ms: p50 {percentile(times, 0.5):.1f}  p99 {percentile(times, 0.99):.1f}")
    rerank.RERANK_TOP = chosen[1]
    engine.dispose()


if __name__ == "__main__":
    main()
