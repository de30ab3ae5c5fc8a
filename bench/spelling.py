"""Spelling correction on SciFact: it must leave real queries alone and undo typos.

Lexical nDCG@10 (BM25 over the FTS5 index, as `broadsheet eval beir` measures it) of SciFact's
test queries, as written and with spelling correction; then with one seeded random edit (a
letter deleted, inserted, replaced, or two swapped) in one word of 6 letters or more per query,
without and with correction. Also: how many clean queries get any correction (should be 0),
how many typos are put back to the very word, and what a correction costs.

The store is `broadsheet eval beir`'s cached one when it exists (nothing is embedded here),
else the corpus is imported into a scratch store (keywords only: a few seconds).

    python bench/spelling.py                        # every test query, the whole corpus
    python bench/spelling.py --docs 300 --queries 10   # a tiny run (bench/smoke.sh)
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import string
import tempfile
import time
from itertools import islice
from pathlib import Path

from sqlalchemy import Engine, func, select

from broadsheet.db.engine import open_store
from broadsheet.db.schema import papers
from broadsheet.ingest.runner import import_file
from broadsheet.search.embed import DEFAULT_MODEL
from broadsheet.search.evaluate import RUN_DEPTH, default_store_path, load_split, measure
from broadsheet.search.lexical import lexical_search
from broadsheet.search.spelling import correct_query, vocabularies
from broadsheet.sources import beir

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"
_WORD = re.compile(r"[^\W_]+")
TYPO_MIN_LETTERS = 6


def with_typo(query: str, rng: random.Random) -> tuple[str, str | None]:
    """``query`` with one random edit in one of its long words, and the word edited."""
    words = [m for m in _WORD.finditer(query) if len(m[0]) >= TYPO_MIN_LETTERS and m[0].isalpha()]
    if not words:
        return query, None
    match = rng.choice(words)
    word = match[0]
    while True:
        at = rng.randrange(len(word))
        letter = rng.choice(string.ascii_lowercase)
        kind = rng.choice(("delete", "insert", "replace", "swap"))
        if kind == "delete":
            typo = word[:at] + word[at + 1 :]
        elif kind == "insert":
            typo = word[:at] + letter + word[at:]
        elif kind == "replace":
            typo = word[:at] + letter + word[at + 1 :]
        else:
            at = min(at, len(word) - 2)
            typo = word[:at] + word[at + 1] + word[at] + word[at + 2 :]
        if typo.lower() != word.lower():
            return query[: match.start()] + typo + query[match.end() :], word


def lexical_run(engine: Engine, queries: dict[str, str], doc_ids: dict[int, str]):
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(papers)).scalar_one()
        return {
            query_id: {
                doc_ids[hit.seq]: hit.score
                for hit in lexical_search(connection, text, RUN_DEPTH, papers_count=count)
            }
            for query_id, text in queries.items()
        }


def corrected(engine: Engine, queries: dict[str, str]) -> tuple[dict[str, str], list[float]]:
    """The queries as search would run them, and each correction's time in ms."""
    out, times = {}, []
    for query_id, text in queries.items():
        start = time.perf_counter()
        correction = correct_query(engine, text)
        times.append((time.perf_counter() - start) * 1000)
        out[query_id] = correction.query if correction else text
    return out, times


def open_corpus(data: Path, docs: int, store: Path | None, scratch: Path) -> Engine:
    """The cached evaluation store, or a scratch one holding the first ``docs`` documents."""
    cached = store or default_store_path(data, DEFAULT_MODEL)
    if docs == 0 and cached.exists():
        print(f"store: {cached}")
        return open_store(f"sqlite:///{cached}")
    corpus = data / "corpus.jsonl"
    if docs:
        corpus = scratch / "corpus.jsonl"
        with (data / "corpus.jsonl").open("rb") as source:
            corpus.write_bytes(b"".join(islice(source, docs)))
    engine = open_store(f"sqlite:///{scratch / 'store.db'}")
    import_file(engine, corpus, fmt=beir.FORMAT)
    print(f"store: scratch, {docs or 'all'} documents")
    return engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="a BEIR SciFact folder")
    parser.add_argument("--split", default="test")
    parser.add_argument("--docs", type=int, default=0, help="import only the first N (0: all)")
    parser.add_argument("--queries", type=int, default=0, help="only the first N (0: all)")
    parser.add_argument("--store", type=Path, help="a store of the corpus to reuse")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    if not (args.data / "corpus.jsonl").exists():
        print(f"skipped: SciFact not found at {args.data} (it sits beside the repository)")
        return

    split = load_split(args.data, args.split)
    chosen = dict(islice(split.queries.items(), args.queries or None))
    qrels = {query_id: split.qrels[query_id] for query_id in chosen}
    scratch = tempfile.TemporaryDirectory(prefix="bench-spelling-")
    engine = open_corpus(args.data, args.docs, args.store, Path(scratch.name))
    with engine.connect() as connection:
        doc_ids = {
            seq: beir.doc_id(pid)
            for seq, pid in connection.execute(select(papers.c.seq, papers.c.id))
        }

    vocabularies.clear()
    start = time.perf_counter()
    vocabulary = vocabularies.get(engine)
    built = time.perf_counter() - start

    rng = random.Random(args.seed)
    typos, edited = {}, {}
    for query_id, text in chosen.items():
        typos[query_id], edited[query_id] = with_typo(text, rng)
    clean_fixed, clean_ms = corrected(engine, chosen)
    typo_fixed, typo_ms = corrected(engine, typos)

    changed = [q for q in chosen if clean_fixed[q] != chosen[q]]
    with_typos = [q for q in chosen if edited[q] is not None]
    restored = [q for q in with_typos if typo_fixed[q].lower() == chosen[q].lower()]
    rows = {
        "clean": chosen,
        "clean + correction": clean_fixed,
        "typo": typos,
        "typo + correction": typo_fixed,
    }
    print(f"SciFact {args.split}: {len(chosen)} queries, {len(doc_ids):,} papers")
    print(f"vocabulary: {len(vocabulary.docs):,} words, read in {built * 1000:.0f} ms")
    print(f"clean queries given any correction: {len(changed)}")
    for query_id in changed:
        print(f"  {chosen[query_id]!r} -> {clean_fixed[query_id]!r}")
    print(f"queries with a typo: {len(with_typos)}; put back exactly: {len(restored)}")
    all_ms = sorted(clean_ms + typo_ms)
    p95 = all_ms[int(0.95 * (len(all_ms) - 1))]
    print(f"correction time: median {statistics.median(all_ms):.2f} ms, p95 {p95:.2f} ms")
    print(f"{'queries':<22}{'lexical nDCG@10':>16}")
    for name, queries in rows.items():
        score = measure(qrels, lexical_run(engine, queries, doc_ids))["nDCG@10"]
        print(f"{name:<22}{score:>16.4f}")
    engine.dispose()
    scratch.cleanup()


if __name__ == "__main__":
    main()
