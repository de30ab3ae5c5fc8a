"""Retrieval quality on a BEIR data set: nDCG@10, R@100 and MRR@10 via ir-measures.

The corpus goes into a scratch store (by default a cache file per corpus and model, so a
second run re-embeds nothing), then every query runs lexical-only, dense-only and hybrid.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import ir_measures
import orjson
from ir_measures import RR, R, nDCG
from sqlalchemy import Engine, select

from broadsheet.config import cache_dir
from broadsheet.db.engine import open_store
from broadsheet.db.schema import papers
from broadsheet.ingest.runner import ImportSummary, import_file
from broadsheet.search.embed import load_embedder
from broadsheet.search.filters import SearchFilters
from broadsheet.search.fusion import fuse
from broadsheet.search.hybrid import Candidates, Mode, normalise_query, retrieve
from broadsheet.search.indexing import IndexSummary, index_papers
from broadsheet.search.rerank import rerank
from broadsheet.sources import beir
from broadsheet.sources.base import RecordError

MEASURES = (nDCG @ 10, R @ 100, RR @ 10)
MEASURE_NAMES = {nDCG @ 10: "nDCG@10", R @ 100: "R@100", RR @ 10: "MRR@10"}
RUN_DEPTH = 100


@dataclass(slots=True)
class BeirSplit:
    queries: dict[str, str]  # only the queries judged in this split
    qrels: dict[str, dict[str, int]]


def load_split(directory: Path, split: str) -> BeirSplit:
    """Queries and relevance judgements of ``split``; malformed lines name file and line."""
    qrels_path = directory / "qrels" / f"{split}.tsv"
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(newline="") as handle:
        for line, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if line == 1 and row and row[0] == "query-id":
                continue
            if len(row) != 3 or not row[2].lstrip("-").isdigit():
                raise RecordError(
                    str(qrels_path), line, None, "expected query-id, corpus-id, score"
                )
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    queries_path = directory / "queries.jsonl"
    queries: dict[str, str] = {}
    with queries_path.open("rb") as handle:
        for line, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = orjson.loads(raw)
                query_id, query_text = str(record["_id"]), record["text"]
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                raise RecordError(
                    str(queries_path), line, None, f"expected _id and text ({exc})"
                ) from exc
            if query_id in qrels:
                queries[query_id] = query_text
    missing = set(qrels) - set(queries)
    if missing:
        raise RecordError(str(queries_path), 0, "_id", f"{len(missing)} judged queries are missing")
    return BeirSplit(queries, qrels)


def default_store_path(directory: Path, model: str) -> Path:
    cache = cache_dir("eval")
    safe_model = model.replace("/", "_")
    return cache / f"{beir.corpus_name(directory / 'corpus.jsonl')}-{safe_model}.db"


def store_url(store: Path | str) -> str:
    """The database URL of a scratch store given as a SQLite file or as a URL."""
    return store if isinstance(store, str) and "://" in store else f"sqlite:///{store}"


def prepare_store(
    directory: Path,
    model: str,
    store_path: Path | str,
    progress: Callable[[int], None] | None = None,
) -> tuple[Engine, ImportSummary, IndexSummary]:
    """Import the corpus (idempotent) into a SQLite file or a database URL and embed what
    lacks a vector."""
    engine = open_store(store_url(store_path))
    imported = import_file(engine, directory / "corpus.jsonl", fmt=beir.FORMAT)
    indexed = index_papers(engine, load_embedder(model), progress=progress)
    return engine, imported, indexed


def collect_candidates(
    engine: Engine, split: BeirSplit, model: str, progress: Callable[[int], None] | None = None
) -> dict[str, Candidates]:
    """Lexical and dense candidates of every query (queries are embedded in one batch)."""
    texts = {query_id: normalise_query(query) for query_id, query in split.queries.items()}
    vectors = load_embedder(model).encode(list(texts.values()))
    found = {}
    for (query_id, query), vector in zip(texts.items(), vectors, strict=True):
        found[query_id] = retrieve(engine, query, Mode.hybrid, SearchFilters(), model, vector)
        if progress is not None:
            progress(1)
    return found


def _doc_ids(engine: Engine) -> dict[int, str]:
    with engine.connect() as connection:
        rows = connection.execute(select(papers.c.seq, papers.c.id))
        return {seq: beir.doc_id(paper_id) for seq, paper_id in rows}


def make_run(
    engine: Engine,
    candidates: dict[str, Candidates],
    doc_ids: dict[int, str],
    mode: Mode,
    dense_weight: float,
    model: str | None = None,
    queries: dict[str, str] | None = None,
) -> dict[str, dict[str, float]]:
    """Each query's first RUN_DEPTH results, as search ranks them; reranked by passages when
    ``model`` is given and the mode reads vectors."""
    run: dict[str, dict[str, float]] = {}
    for query_id, found in candidates.items():
        lexical = found.lexical if mode != Mode.dense else []
        dense = found.dense if mode != Mode.lexical else []
        ranked = fuse(lexical, dense, dense_weight)
        if model is not None and mode != Mode.lexical:
            query = (queries or {}).get(query_id)
            ranked = rerank(engine, model, ranked, found.query_vector, query=query)
        ranked = ranked[:RUN_DEPTH]
        # a score that orders as search does: reranked first, then the fused rest
        count = len(ranked)
        run[query_id] = {doc_ids[f.seq]: float(count - rank) for rank, f in enumerate(ranked)}
    return run


def measure(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> dict[str, float]:
    scores = ir_measures.calc_aggregate(MEASURES, qrels, run)
    return {MEASURE_NAMES[m]: float(scores[m]) for m in MEASURES}


# what is measured: the mode searched, and whether its head is reranked by passages
RUNS: dict[str, tuple[Mode, bool]] = {
    "lexical": (Mode.lexical, False),
    "dense": (Mode.dense, True),
    "hybrid": (Mode.hybrid, True),
    "hybrid, fused only": (Mode.hybrid, False),
}


def evaluate(
    engine: Engine,
    split: BeirSplit,
    candidates: dict[str, Candidates],
    dense_weight: float,
    model: str,
) -> dict[str, dict[str, float]]:
    """The measures of each run in RUNS ("hybrid" is what search does)."""
    doc_ids = _doc_ids(engine)
    return {
        name: measure(
            split.qrels,
            make_run(
                engine,
                candidates,
                doc_ids,
                mode,
                dense_weight,
                model if reranked else None,
                split.queries,
            ),
        )
        for name, (mode, reranked) in RUNS.items()
    }


def tune_dense_weight(
    engine: Engine,
    split: BeirSplit,
    candidates: dict[str, Candidates],
    weights: Iterable[float],
    model: str,
) -> list[tuple[float, float]]:
    """(weight, hybrid nDCG@10) for each weight, best first."""
    doc_ids = _doc_ids(engine)
    results = [
        (
            w,
            measure(split.qrels, make_run(engine, candidates, doc_ids, Mode.hybrid, w, model))[
                "nDCG@10"
            ],
        )
        for w in weights
    ]
    return sorted(results, key=lambda r: -r[1])
