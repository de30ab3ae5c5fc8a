"""Write synthetic records in the arXiv metadata snapshot format (for benchmarks and tests).

By default titles and abstracts repeat 40 words. ``ZipfVocabulary`` gives text with a
realistic word distribution instead (for search benchmarks): a few words very common, most
of them rare.
"""

from __future__ import annotations

import itertools
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


# Function words lead the Zipf ranking, as in real English text (~40 % of the words).
FUNCTION_WORDS = """the of and in to a we is for that with on by this are as an be from our
which these can it at or its results show using based two not their between has also been
have new paper than both such use into more study while however all one only""".split()
WORD_SYLLABLES = """ba be bi bo bu ca ce ci co cu da de di do du fa fe fi fo ga ge gi go ka
ke ki ko la le li lo lu ma me mi mo mu na ne ni no nu pa pe pi po pu ra re ri ro ru sa se si
so su ta te ti to tu va ve vi vo za zo an el in on ul ar er ir or ur ex ent ion ter tal ment
sis""".split()


class ZipfVocabulary:
    """Made-up words (syllable combinations) after real function words, drawn by Zipf's law.

    The word of rank r (from 1) has weight 1 / (r + offset) ** exponent; shorter made-up words
    get the more common ranks, as in real languages. With 30,000 words and exponent 1, the
    function words make ~40 % of the text, the most common made-up word is in about one
    abstract in four and the rarest in about one in 2,000.
    """

    def __init__(
        self, size: int = 30_000, exponent: float = 1.0, offset: float = 1.0, seed: int = 11
    ):
        rng = random.Random(seed)
        made_up: set[str] = set()
        content_size = size - len(FUNCTION_WORDS)
        while len(made_up) < content_size:
            syllables = rng.choices((2, 3, 4), weights=(2, 5, 3))[0]
            word = "".join(rng.choice(WORD_SYLLABLES) for _ in range(syllables))
            if word not in FUNCTION_WORDS:
                made_up.add(word)
        ordered = sorted(made_up, key=lambda w: (len(w), rng.random()))
        self.words: list[str] = [*FUNCTION_WORDS, *ordered]
        weights = [1.0 / (rank + offset) ** exponent for rank in range(1, len(self.words) + 1)]
        self.cumulative = list(itertools.accumulate(weights))
        first = len(FUNCTION_WORDS)
        self._content = self.words[first:]
        self._content_cumulative = [c - self.cumulative[first - 1] for c in self.cumulative[first:]]

    def __len__(self) -> int:
        return len(self.words)

    def draw(self, rng: random.Random, n: int) -> list[str]:
        return rng.choices(self.words, cum_weights=self.cumulative, k=n)

    def draw_content(self, rng: random.Random, n: int) -> list[str]:
        """``n`` words by the same law, function words left out (e.g. for queries)."""
        return rng.choices(self._content, cum_weights=self._content_cumulative, k=n)

    def sentence(self, rng: random.Random, n: int) -> str:
        return " ".join(self.draw(rng, n))


def _sentence(rng: random.Random, n: int, vocabulary: ZipfVocabulary | None = None) -> str:
    if vocabulary is not None:
        return vocabulary.sentence(rng, n)
    return " ".join(rng.choice(WORDS) for _ in range(n))


def snapshot_record(
    index: int, rng: random.Random, vocabulary: ZipfVocabulary | None = None
) -> dict:
    """One record: new-style id, 1–3 versions, 1–8 authors, wrapped abstract, some LaTeX.

    Without ``vocabulary``: a 12-word title and 72–144 words of abstract from 40 words. With
    one: a 10-word title and 100–200 words (150 on average) drawn from it.
    """
    year, month = 15 + index % 10, 1 + (index // 10) % 12
    paper_id = f"{year:02d}{month:02d}.{index % 100000:05d}"
    line_count = rng.randint(6, 12) if vocabulary is None else rng.randint(8, 17)
    lines = [_sentence(rng, 12, vocabulary) for _ in range(line_count)]
    if index % 3 == 0:
        lines.insert(2, rng.choice(LATEX))
    authors = [(_surname(rng), rng.choice(FIRST), "") for _ in range(rng.randint(1, 8))]
    versions = [
        {"version": f"v{v}", "created": f"Mon, {1 + v} Apr 20{year} 12:00:00 GMT"}
        for v in range(1, rng.randint(1, 3) + 1)
    ]
    if vocabulary is None:
        title = _sentence(rng, 8).capitalize() + "\n  " + _sentence(rng, 4)
    else:
        title = _sentence(rng, 7, vocabulary).capitalize() + "\n  " + _sentence(rng, 3, vocabulary)
    return {
        "id": paper_id,
        "submitter": authors[0][1] + " " + authors[0][0],
        "authors": ", ".join(f"{f} {last}" for last, f, _ in authors),
        "title": title,
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


def records(count: int, seed: int = 7, vocabulary: ZipfVocabulary | None = None) -> Iterator[dict]:
    """``count`` records with distinct ids (up to 500,000)."""
    rng = random.Random(seed)
    for index in range(count):
        record = snapshot_record(index, rng, vocabulary)
        # make ids distinct beyond 100,000 records by varying the month with the block
        block = index // 100000
        yymm = int(record["id"][:4]) + block * 100 if block else int(record["id"][:4])
        record["id"] = f"{yymm:04d}.{record['id'][5:]}"
        yield record


def write_snapshot(
    path: Path, count: int, seed: int = 7, vocabulary: ZipfVocabulary | None = None
) -> Path:
    with path.open("wb") as handle:
        for record in records(count, seed, vocabulary):
            handle.write(orjson.dumps(record) + b"\n")
    return path
