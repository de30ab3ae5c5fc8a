"""The second stage: the first candidates of a fused list reordered by their best passage.

Only the head of the list is reordered (what can reach the first pages), and only within
itself: what is kept and how many are found still follow the fused score and its cut-off.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import Engine

from broadsheet.search.fusion import Fused
from broadsheet.search.passages import best_passages

RERANK_TOP = 50
# Tuned on SciFact's train split (python bench/rerank.py): 0.40 / 0.10 / 0.50 gives 0.7523
# there; the grid's best, 0.40 / 0.20 / 0.40, gives 0.7539, within noise of it (the eight best
# lines lie within 0.004). Reordering the first 50 keeps every gain of reordering all 400.
LEXICAL_SHARE = 0.40
DENSE_SHARE = 0.10
PASSAGE_SHARE = 0.50


def rerank_score(item: Fused) -> float:
    """Keyword and whole-paper scores (normalised as fused) and the best passage's cosine; a
    paper without passage vectors counts its own cosine there."""
    passage = item.passage if item.passage is not None else item.dense
    return (
        LEXICAL_SHARE * item.lexical_norm
        + DENSE_SHARE * item.dense_norm
        + PASSAGE_SHARE * (passage or 0.0)
    )


def rerank(
    engine: Engine,
    model: str,
    ranked: list[Fused],
    query_vector: np.ndarray | None,
    top: int | None = None,
) -> list[Fused]:
    """``ranked`` with its first ``top`` (RERANK_TOP) reordered by :func:`rerank_score`
    (unchanged without a query vector, or when none of them has passage vectors)."""
    top = RERANK_TOP if top is None else top
    head = ranked[:top]
    if query_vector is None or not head:
        return ranked
    with engine.connect() as connection:
        best = best_passages(connection, model, [f.seq for f in head], query_vector)
    if not best:
        return ranked
    for item in head:
        item.passage = best.get(item.seq)
        item.rerank = rerank_score(item)
    head = sorted(head, key=lambda f: (-(f.rerank or 0.0), f.seq))
    return head + ranked[top:]
