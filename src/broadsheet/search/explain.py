"""Why a result is where it is: each stage's score, and why it passed the cut-off.

The same explanation serves ``broadsheet search --explain``, the API's ``explain=true`` and
the search page for admins.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from broadsheet.search.fusion import MIN_FUSED, STRONG_COSINE, Fused


@dataclass(frozen=True, slots=True)
class Explanation:
    lexical: float | None  # BM25 of the paper for the query's words; None: not a keyword match
    lexical_scaled: float  # as fused: a fraction of the best BM25 among the candidates
    dense: float | None  # cosine of the paper's vector; None: not among the closest
    dense_scaled: float  # as fused: min-max among the dense candidates
    fused: float
    passage: float | None  # cosine of the paper's closest sentence; None: not reranked
    rerank: float | None  # the reranked score, for the first results only
    exact_words: float | None  # share of the query's words the paper holds as written
    kept_because: str

    def as_dict(self) -> dict[str, float | str | None]:
        return {
            key: round(value, 4) if isinstance(value, float) else value
            for key, value in asdict(self).items()
        }

    def summary(self) -> str:
        """One line for a terminal or a page."""
        parts = []
        if self.lexical is not None:
            parts.append(f"keywords {self.lexical:.2f} (scaled {self.lexical_scaled:.2f})")
        if self.dense is not None:
            parts.append(f"meaning {self.dense:.3f} (scaled {self.dense_scaled:.2f})")
        parts.append(f"fused {self.fused:.3f}")
        if self.passage is not None:
            parts.append(f"best sentence {self.passage:.3f}")
        if self.exact_words is not None:
            parts.append(f"words as written {self.exact_words:.0%}")
        if self.rerank is not None:
            parts.append(f"reranked {self.rerank:.3f}")
        return " · ".join(parts) + f" · {self.kept_because}"


def kept_because(item: Fused, exact: bool, cutoff: bool) -> str:
    """Why ``item`` is in the list (the cut-off's own tests, in its order); a less close one
    is listed only when asked for."""
    if exact:
        return "named by the query (its arXiv id or an author)"
    if not cutoff:
        return "no cut-off asked for"
    if item.score >= MIN_FUSED:
        return f"fused score {item.score:.3f} ≥ {MIN_FUSED:.2f}"
    if item.dense is not None and item.dense >= STRONG_COSINE:
        return f"close in meaning on its own: cosine {item.dense:.3f} ≥ {STRONG_COSINE:.2f}"
    if item.every_word:
        return "holds every word of the query"
    return f"less close: fused score {item.score:.3f} < {MIN_FUSED:.2f}, listed on request"


def explain(item: Fused, exact: bool = False, cutoff: bool = True) -> Explanation:
    return Explanation(
        lexical=item.lexical,
        lexical_scaled=item.lexical_norm,
        dense=item.dense,
        dense_scaled=item.dense_norm,
        fused=item.score,
        passage=item.passage,
        rerank=item.rerank,
        exact_words=item.exact_words,
        kept_because=kept_because(item, exact, cutoff),
    )
