"""Lexical search: BM25 over titles and abstracts, in the store's keyword index (porter stemming).

The user's text never reaches FTS5's query syntax: it is split into plain lower-case terms,
stop words are dropped, and the terms are OR-ed, so quotes, ``*``, ``NEAR``, ``AND`` or
unbalanced parentheses are just words. Measured on SciFact (train split), a title weighted
twice the abstract ranks best.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Connection

from broadsheet.search import keyword_index
from broadsheet.search.filters import SearchFilters

MAX_TERMS = 64
_TERM = re.compile(r"[^\W_]+")  # FTS5's unicode61 splits on "_" too
STOP_WORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just me more most my myself no nor not now of off on once only or
    other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very
    was we were what when where which while who whom why will with would you your yours
    yourself yourselves""".split()
)


# On large stores, terms found in more than COMMON_SHARE of the papers are left out of a query
# that has rarer terms: FTS5 must visit every paper holding them, yet their BM25 weight is
# small. On SciFact this costs 0.004 nDCG@10; on 100,000 papers it cuts p95 latency ~10x.
PRUNE_FROM_PAPERS = 20_000
COMMON_SHARE = 0.2


@dataclass(frozen=True, slots=True)
class LexicalHit:
    seq: int
    score: float  # BM25, higher is better


def query_terms(query: str) -> list[str]:
    """Distinct lower-case search terms of ``query``, stop words removed (unless that is all)."""
    words = [w.lower() for w in _TERM.findall(query)]
    terms = [w for w in words if w not in STOP_WORDS] or words
    return list(dict.fromkeys(terms))[:MAX_TERMS]


def has_content_words(query: str) -> bool:
    """Whether ``query`` has a word that is not a stop word ("the of and" has none)."""
    return any(w.lower() not in STOP_WORDS for w in _TERM.findall(query))


def match_expression(query: str, terms: list[str] | None = None) -> str | None:
    """An FTS5 MATCH expression for ``query``: its terms OR-ed, each quoted; None if empty."""
    terms = query_terms(query) if terms is None else terms
    if not terms:
        return None
    return " OR ".join(f'"{t}"' for t in terms)


_document_frequencies: dict[tuple[str, int], dict[str, int]] = {}
_CACHED_STEMS = 65_536


def _document_frequency(connection: Connection, stem: str, size_bucket: int) -> int:
    """Papers holding ``stem`` (cached; ``size_bucket`` renews the cache as the store grows)."""
    key = (str(connection.engine.url), size_bucket)
    known = _document_frequencies.get(key)
    if known is None or len(known) > _CACHED_STEMS:
        known = _document_frequencies[key] = {}
    if stem not in known:
        known.update(keyword_index.for_engine(connection).document_counts(connection, [stem]))
    return known[stem]


def prune_common_terms(connection: Connection, terms: list[str], papers_count: int) -> list[str]:
    """``terms`` without those held by more than COMMON_SHARE of a large store's papers."""
    if papers_count < PRUNE_FROM_PAPERS or len(terms) < 2:
        return terms
    limit = COMMON_SHARE * papers_count
    bucket = papers_count // 10_000
    rare = [
        t for t in terms if _document_frequency(connection, keyword_index.stem(t), bucket) <= limit
    ]
    return rare or terms


def lexical_search(
    connection: Connection,
    query: str,
    limit: int = 200,
    filters: SearchFilters | None = None,
    papers_count: int | None = None,
) -> list[LexicalHit]:
    """The best ``limit`` papers for ``query`` by BM25, optionally filtered.

    Pass ``papers_count`` (the store's size) to let large stores skip very common terms.
    """
    terms = query_terms(query)
    if papers_count is not None:
        terms = prune_common_terms(connection, terms, papers_count)
    found = keyword_index.for_engine(connection).search(connection, terms, limit, filters)
    return [LexicalHit(seq, score) for seq, score in found]
