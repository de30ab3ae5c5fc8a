"""Write synthetic records in the arXiv metadata snapshot format (for benchmarks and tests)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import orjson

WORDS = [
    "learning",
    "model",
    "neural",
    "network",
    "graph",
    "attention",
    "transformer",
    "pooling",
    "layer",
    "normalization",
    "training",
    "data",
    "sample",
    "loss",
    "gradient",
    "optimisation",
    "convex",
    "bound",
    "theorem",
    "quantum",
    "field",
    "spectrum",
    "galaxy",
    "stellar",
    "protein",
    "sequence",
    "language",
    "retrieval",
    "embedding",
    "kernel",
    "sparse",
    "estimator",
    "bayesian",
    "inference",
    "posterior",
    "variational",
    "diffusion",
    "generative",
    "robust",
    "adversarial",
]
CATEGORIES = ("cs.LG", "cs.CL", "cs.CV", "stat.ML", "math.OC", "hep-th", "astro-ph.GA", "q-bio.BM")
LATEX = (r"$\mathcal{O}(n \log n)$", r"\textbf{state-of-the-art}", r"M\"uller", r"$\alpha$-stable")
FIRST = ("A.", "B. C.", "Maria", "Wei", "J.-P.", "Olga", "Ravi", "Sara", "Kenji", "Amara")
SYLLABLES = (
    "ka",
    "lo",
    "mi",
    "ser",
    "tan",
    "vo",
    "rel",
    "du",
    "zh",
    "an",
    "ber",
    "gi",
    "os",
    "ne",
    "ri",
    "ta",
    "ul",
    "ven",
    "co",
    "ham",
    "is",
    "yu",
    "pe",
    "dor",
    "nak",
    "el",
)
LATEX_SURNAMES = (r"M\"uller", "Garc\\'ia", r"Erd\H{o}s", r"{\O}stergaard")


def _surname(rng: random.Random) -> str:
    """A realistic spread of surnames: ~17,000 distinct, a few with LaTeX accents."""
    if rng.random() < 0.03:
        return rng.choice(LATEX_SURNAMES)
    return "".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize()


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def snapshot_record(index: int, rng: random.Random) -> dict:
    """One record: new-style id, 1–3 versions, 1–8 authors, wrapped abstract, some LaTeX."""
    year, month = 15 + index % 10, 1 + (index // 10) % 12
    paper_id = f"{year:02d}{month:02d}.{index % 100000:05d}"
    lines = [_sentence(rng, 12) for _ in range(rng.randint(6, 12))]
    if index % 3 == 0:
        lines.insert(2, rng.choice(LATEX))
    authors = [(_surname(rng), rng.choice(FIRST), "") for _ in range(rng.randint(1, 8))]
    versions = [
        {"version": f"v{v}", "created": f"Mon, {1 + v} Apr 20{year} 12:00:00 GMT"}
        for v in range(1, rng.randint(1, 3) + 1)
    ]
    return {
        "id": paper_id,
        "submitter": authors[0][1] + " " + authors[0][0],
        "authors": ", ".join(f"{f} {last}" for last, f, _ in authors),
        "title": _sentence(rng, 8).capitalize() + "\n  " + _sentence(rng, 4),
        "comments": f"{rng.randint(4, 40)} pages",
        "journal-ref": None,
        "doi": None,
        "report-no": None,
        "categories": " ".join(rng.sample(CATEGORIES, rng.randint(1, 3))),
        "license": "http://creativecommons.org/licenses/by/4.0/",
        "abstract": "  " + "\n".join(lines) + "\n",
        "versions": versions,
        "update_date": f"20{year}-{month:02d}-15",
        "authors_parsed": [list(a) for a in authors],
    }


def records(count: int, seed: int = 7) -> Iterator[dict]:
    """``count`` records with distinct ids (up to 500,000)."""
    rng = random.Random(seed)
    for index in range(count):
        record = snapshot_record(index, rng)
        # make ids distinct beyond 100,000 records by varying the month with the block
        block = index // 100000
        yymm = int(record["id"][:4]) + block * 100 if block else int(record["id"][:4])
        record["id"] = f"{yymm:04d}.{record['id'][5:]}"
        yield record


def write_snapshot(path: Path, count: int, seed: int = 7) -> Path:
    with path.open("wb") as handle:
        for record in records(count, seed):
            handle.write(orjson.dumps(record) + b"\n")
    return path
