"""The second stage: the first candidates of a fused list reordered by their best passage.

Only the head of the list is reordered (what can reach the first pages), and only within
itself: what is kept and how many are found still follow the fused score and its cut-off.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import Engine

from broadsheet.search.fusion import Fused
from broadsheet.search.passages import best_passages
from broadsheet.search.written_words import exact_word_share, paper_texts, word_patterns

RERANK_TOP = 50
# Tuned on SciFact's train split (python bench/rerank.py): 0.40 / 0.10 / 0.50 gives 0.7523
# there; the grid's best, 0.40 / 0.20 / 0.40, gives 0.7539, within noise of it (the eight best
# lines lie within 0.004). Reordering the first 50 keeps every gain of reordering all 400.
LEXICAL_SHARE = 0.40
DENSE_SHARE = 0.10
PASSAGE_SHARE = 0.50
# The share of the query's words a paper holds as written (or plural), not only as stems:
# "normalization" is stemmed to "normal", which surface normals match too. On SciFact's train
# split 0.10 is neutral (0.7522 against 0.7523 without; 0.20 gives 0.7476); on the daily
# papers it lifts the papers that say "normalization" above those about normals.
EXACT_SHARE = 0.10


def rerank_score(item: Fused) -> float:
    """Keyword and whole-paper scores (normalised as fused) and the best passage's cosine; a
    paper without passage vectors counts its own cosine there."""
    passage = item.passage if item.passage is not None else item.dense
    return (
        LEXICAL_SHARE * item.lexical_norm
        + DENSE_SHARE * item.dense_norm
        + PASSAGE_SHARE * (passage or 0.0)
        + EXACT_SHARE * (item.exact_words or 0.0)
    )


def rerank(
    engine: Engine,
    model: str,
    ranked: list[Fused],
    query_vector: np.ndarray | None,
    top: int | None = None,
    query: str | None = None,
) -> list[Fused]:
    """``ranked`` with its first ``top`` (RERANK_TOP) reordered by :func:`rerank_score`
    (unchanged without a query vector, or when none of them has passage vectors)."""
    top = RERANK_TOP if top is None else top
    head = ranked[:top]
    if query_vector is None or not head:
        return ranked
    seqs = [f.seq for f in head]
    patterns = word_patterns(query) if query and EXACT_SHARE else []
    with engine.connect() as connection:  # one connection for both reads
        best = best_passages(connection, model, seqs, query_vector)
        if not best:
            return ranked
        texts = paper_texts(connection, seqs) if patterns else {}
    for item in head:
        item.passage = best.get(item.seq)
        if patterns:
            item.exact_words = exact_word_share(patterns, texts.get(item.seq, ""))
        item.rerank = rerank_score(item)
    head = sorted(head, key=lambda f: (-(f.rerank or 0.0), f.seq))
    return head + ranked[top:]
