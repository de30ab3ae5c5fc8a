"""Fusing a lexical and a dense ranking into one, and the relevance cut-off."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Tuned on SciFact's train split: `broadsheet eval beir DIR --split train --tune` (0.7429 at
# 0.40; 0.7425 at 0.35, 0.7386 at 0.45).
DENSE_WEIGHT = 0.40
# The relevance cut-off: a result stays when its fused score reaches MIN_FUSED (so the list
# ends where scores fall away from the best, however many that leaves), or when it is close
# in meaning on its own (cosine of the default model). On SciFact's train split it keeps 27
# results per query on average and 92 % of the relevant ones among the candidates (0.30 kept
# 26.5 and 92 % when BM25 was min-max scaled; with BM25 scaled to the best, 0.30 would keep 43).
MIN_FUSED = 0.40
STRONG_COSINE = 0.45
# Fused scores are relative to the best candidate, so the cut-off above keeps the top of any
# list, however unrelated. When no word of a query matches (or it has stop words only), the
# list is kept only if its best cosine reaches WEAK_COSINE. Measured on SciFact's store: the
# best cosine of its 1,109 queries is 0.29-0.92 (test split: 0.33 at least, 1% below 0.36);
# of 300 random letter strings 89% stay below 0.30 (median 0.24); stop words alone, 0.11-0.27.
WEAK_COSINE = 0.30
# What the cut-off leaves is offered on request ("N more, less close") down to this fused
# score, half the cut-off. On 10 labelled topic queries over the 753 shared daily papers
# (bench/topic_search.py), candidates below the cut-off held 29 relevant papers among 2,243;
# above this floor, 14 among 372 (37 a query); the rest is noise.
MIN_LESS_CLOSE = 0.20


@dataclass(slots=True)
class Fused:
    seq: int
    score: float  # fused, in [0, 1]
    lexical: float | None = None  # raw BM25
    dense: float | None = None  # raw cosine
    lexical_norm: float = 0.0
    dense_norm: float = 0.0
    passage: float | None = None  # raw cosine of the paper's closest passage
    rerank: float | None = None  # the reranked score of the first candidates
    exact_words: float | None = None  # share of the query's words the paper holds as written
    every_word: bool = False  # its title or abstract holds every word of the query (as stems)


def min_max(scores: Sequence[float]) -> list[float]:
    """Scores scaled to [0, 1] within their own list (all 1.0 when they are equal)."""
    if not scores:
        return []
    low, high = min(scores), max(scores)
    if high == low:
        return [1.0] * len(scores)
    return [(s - low) / (high - low) for s in scores]


def scaled_to_best(scores: Sequence[float]) -> list[float]:
    """BM25 scores as fractions of the best one (min-max when any is not positive).

    Min-max would give the weakest keyword match 0, as if the word were not there at all: a
    short query's third matching paper then ranked below papers without the word.
    """
    if not scores or min(scores) <= 0:
        return min_max(scores)
    high = max(scores)
    return [s / high for s in scores]


def fuse(
    lexical: Sequence[tuple[int, float]],
    dense: Sequence[tuple[int, float]],
    dense_weight: float = DENSE_WEIGHT,
) -> list[Fused]:
    """Weighted sum of normalised scores (BM25 scaled to the best, cosines min-max); a paper
    missing from one list scores 0 there."""
    fused: dict[int, Fused] = {}
    for (seq, raw), norm in zip(lexical, scaled_to_best([s for _, s in lexical]), strict=True):
        fused[seq] = Fused(seq, 0.0, lexical=raw, lexical_norm=norm)
    for (seq, raw), norm in zip(dense, min_max([s for _, s in dense]), strict=True):
        item = fused.setdefault(seq, Fused(seq, 0.0))
        item.dense, item.dense_norm = raw, norm
    lexical_weight = 1.0 - dense_weight if lexical else 0.0
    dense_weight = dense_weight if dense else 0.0
    total = (lexical_weight + dense_weight) or 1.0
    for item in fused.values():
        item.score = (lexical_weight * item.lexical_norm + dense_weight * item.dense_norm) / total
    return sorted(fused.values(), key=lambda f: (-f.score, f.seq))


def relevant(item: Fused) -> bool:
    """The relevance cut-off: near the best fused score, close in meaning on its own, or
    holding every word of the query (a topic query's papers may score low on both sides:
    a long abstract's one mention, a vector about its main subject)."""
    return (
        item.score >= MIN_FUSED
        or (item.dense is not None and item.dense >= STRONG_COSINE)
        or item.every_word
    )


def less_close(item: Fused) -> bool:
    """Below the cut-off, but still offered on request."""
    return item.score >= MIN_LESS_CLOSE
