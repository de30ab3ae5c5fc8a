"""Hybrid search: lexical and semantic candidates fused, filtered, cut off, sorted and paged.

Degrades to lexical-only (and says so in ``notice``) while vectors are missing or the model
cannot be loaded, or is still loading in another thread (a search never waits for that).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from broadsheet.db.membership import is_one_of
from broadsheet.db.schema import papers
from broadsheet.feed.authors import author_paper_ids, find_author
from broadsheet.feed.cards import card
from broadsheet.metrics import search_stage
from broadsheet.papers.ids import InvalidArxivId, parse_arxiv_id
from broadsheet.papers.repository import papers_by_seq
from broadsheet.search.embed import (
    DEFAULT_MODEL,
    EmbedderUnavailable,
    ModelLoading,
    load_query_embedder,
)
from broadsheet.search.explain import Explanation, explain
from broadsheet.search.filters import SearchFilters, why_nothing_passes
from broadsheet.search.fusion import (
    DENSE_WEIGHT,
    WEAK_COSINE,
    Fused,
    fuse,
    less_close,
    relevant,
)
from broadsheet.search.highlight import highlight, query_stems, snippet
from broadsheet.search.lexical import has_content_words, lexical_search
from broadsheet.search.rerank import rerank
from broadsheet.search.spelling import correct_query
from broadsheet.search.vectors import (
    VectorIndex,
    cached_paper_count,
    vector_index,
    vectors_unavailable,
)
from broadsheet.search.written_words import favour_written_words, holding_every_word

CANDIDATES = 200  # from each retriever
MAX_QUERY_CHARS = 2000  # longer queries are cut: the model reads 256 tokens anyway
WARMING_UP = "Search by meaning is warming up; these results match your words only."
VECTORS_UNAVAILABLE = (
    "Search by meaning is unavailable: this store cannot search its vectors "
    "(`broadsheet doctor` says why and what to do); keyword results only."
)
_QUERY_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="semantic-search")


class Mode(StrEnum):
    hybrid = "hybrid"
    lexical = "lexical"
    dense = "dense"


class Sort(StrEnum):
    relevance = "relevance"
    date = "date"
    upvotes = "upvotes"


@dataclass(frozen=True, slots=True)
class SearchRequest:
    query: str
    filters: SearchFilters = field(default_factory=SearchFilters)
    sort: Sort = Sort.relevance
    limit: int = 20
    offset: int = 0
    mode: Mode = Mode.hybrid
    cutoff: bool = True
    spell: bool = True  # search for the corrected words when some are not in the store
    more: bool = False  # list the less close results (below the cut-off) after the others


@dataclass(slots=True)
class SearchHit:
    paper: dict[str, Any]
    score: float
    lexical: float | None
    dense: float | None
    title_highlight: str | None = None  # with MARK_START/MARK_END around matched terms
    abstract_highlight: str | None = None
    explanation: Explanation | None = None  # each stage's score, and why it was kept
    less_close: bool = False  # below the cut-off, listed because ``more`` was asked for


@dataclass(slots=True)
class SearchResults:
    query: str
    mode: Mode  # what actually ran
    total: int  # results listed: above the cut-off, and the less close ones with ``more``
    hits: list[SearchHit]
    notice: str | None = None
    corrected_query: str | None = None  # what was searched for instead of ``query``
    less_close: int = 0  # results below the cut-off: listed after the others with ``more``


@lru_cache(maxsize=1024)
def _query_vector(model: str, query: str) -> np.ndarray:
    with search_stage("embed"):
        return load_query_embedder(model, wait=False).encode([query])[0]


def _dense_candidates(
    engine: Engine,
    index: VectorIndex,
    query: str,
    filters: SearchFilters,
    model: str,
    query_vector: np.ndarray | Future | None = None,
) -> tuple[list[tuple[int, float]], str | None, np.ndarray | None]:
    """Dense candidates, a notice when semantic search is partial or unavailable, and the
    query's vector."""
    embedded, total = len(index), cached_paper_count(engine)
    if embedded == 0:
        return (
            [],
            "Semantic index not built yet: keyword results only (run `broadsheet index`).",
            None,
        )
    try:
        if query_vector is None:
            query_vector = _query_vector(model, query)
        elif isinstance(query_vector, Future):
            query_vector = query_vector.result()
    except ModelLoading:
        return [], WARMING_UP, None
    except EmbedderUnavailable as exc:
        return [], f"Semantic search unavailable ({exc}): keyword results only.", None
    notice = None
    if embedded < total:
        notice = (
            f"Semantic index covers {embedded:,} of {total:,} papers "
            "(run `broadsheet index`); the rest are found by keywords only."
        )
    with search_stage("vector"):
        found = index.search(query_vector, CANDIDATES, where=filters.conditions())
    # nothing near, or nothing searchable: a store without pgvector finds no vector at all,
    # and must not be reported as searched by meaning
    if not found and vectors_unavailable(engine) is not None:
        return [], VECTORS_UNAVAILABLE, None
    return found, notice, query_vector


def paper_rows(engine: Engine, seqs: list[int]) -> dict[int, dict[str, Any]]:
    """The results' papers as cards (bounded texts: highlights are made from these too)."""
    with engine.connect() as connection:
        return {seq: card(row) for seq, row in papers_by_seq(connection, seqs).items()}


def _highlights(query: str, rows: dict[int, dict[str, Any]]) -> dict[int, tuple[str, str]]:
    stems = query_stems(query)
    return {
        seq: (highlight(row["title"], stems), snippet(row["abstract"], stems))
        for seq, row in rows.items()
    }


def _visible(engine: Engine, seqs: list[int]) -> dict[int, dict[str, Any]]:
    """What sorting needs (date, upvotes) for the results still shown: not hidden, not deleted.

    The indexes keep hidden papers (an admin may show them again), so they are dropped here,
    before counting and paging, by primary key over the candidates only.
    """
    query = select(papers.c.seq, papers.c.published_at, papers.c.upvotes).where(
        papers.c.hidden_at.is_(None)
    )
    with engine.connect() as connection:
        query = query.where(is_one_of(connection, papers.c.seq, seqs))
        return {row["seq"]: dict(row) for row in connection.execute(query).mappings()}


def _sort_key(sort: Sort, rows: dict[int, dict[str, Any]]):
    """A key for sorting best first (with ``reverse=True``)."""
    if sort == Sort.date:
        return lambda f: (rows[f.seq]["published_at"] or datetime.min, f.score)
    if sort == Sort.upvotes:
        return lambda f: (rows[f.seq]["upvotes"], f.score)
    return lambda f: f.score


def _lexical(engine: Engine, query: str, filters: SearchFilters) -> list[tuple[int, float]]:
    with search_stage("keyword"), engine.connect() as connection:
        hits = lexical_search(
            connection, query, CANDIDATES, filters, papers_count=cached_paper_count(engine)
        )
        return favour_written_words(connection, query, [(h.seq, h.score) for h in hits])


def typed_arxiv_id(query: str) -> str | None:
    """The stored form of the arXiv id when the whole query is one (bare, ``arXiv:``, URL)."""
    try:
        return parse_arxiv_id(query.strip()).id
    except InvalidArxivId:
        return None


def exact_matches(engine: Engine, query: str, filters: SearchFilters) -> list[int]:
    """Papers the query names outright, to be shown first: the one whose arXiv id it is,
    else those of the author it names (newest first), visible and within the filters.

    Neither retriever can find them: an id or a name is neither in the indexed text nor
    close in meaning to anything.
    """
    with engine.connect() as connection:
        paper_id = typed_arxiv_id(query)
        if paper_id is not None:
            wanted = [paper_id]
        elif (author := find_author(connection, query)) is not None:
            wanted = author_paper_ids(connection, author, CANDIDATES)
        else:
            return []
        found = connection.execute(
            select(papers.c.id, papers.c.seq).where(
                is_one_of(connection, papers.c.id, wanted),
                papers.c.hidden_at.is_(None),
                *filters.conditions(),
            )
        ).all()
    seqs = dict(found)
    return [seqs[pid] for pid in wanted if pid in seqs]


def _exact_first(ranked: list[Fused], exact: list[int]) -> list[Fused]:
    """``ranked`` with the exact matches moved (or added) to the front, in their order."""
    if not exact:
        return ranked
    by_seq = {f.seq: f for f in ranked}
    front = [by_seq.get(seq) or Fused(seq, 1.0) for seq in exact]
    pinned = set(exact)
    return front + [f for f in ranked if f.seq not in pinned]


def normalise_query(query: str) -> str:
    return " ".join(query.split())[:MAX_QUERY_CHARS]


@dataclass(slots=True)
class Candidates:
    lexical: list[tuple[int, float]]
    dense: list[tuple[int, float]]
    mode: Mode  # what could run
    notice: str | None
    query_vector: np.ndarray | None = None  # when the semantic side ran


def retrieve(
    engine: Engine,
    query: str,
    mode: Mode,
    filters: SearchFilters,
    model: str = DEFAULT_MODEL,
    query_vector: np.ndarray | Future | None = None,
    index: VectorIndex | None = None,
) -> Candidates:
    """Both retrievers' candidates for ``query``; keywords alone when semantics are unavailable.

    The semantic side (embedding the query, then the vector search) runs in a worker thread
    while the store ranks by keywords: both release the GIL, so on two cores they overlap.
    ``query_vector`` saves embedding the query (callers that embed many queries in a batch),
    or is the embedding under way (``embed_ahead``); ``index``: the vector index in hand.
    """
    semantic: Future | None = None
    if mode in (Mode.hybrid, Mode.dense):
        index = index or vector_index(engine, model)
        semantic = _QUERY_POOL.submit(
            _dense_candidates, engine, index, query, filters, model, query_vector
        )
    lexical: list[tuple[int, float]] = []
    if mode in (Mode.hybrid, Mode.lexical):
        lexical = _lexical(engine, query, filters)
    dense: list[tuple[int, float]] = []
    notice, vector = None, None
    if semantic is not None:
        dense, notice, vector = semantic.result()
        if not dense and notice:
            if mode == Mode.dense:
                lexical = _lexical(engine, query, filters)
            mode = Mode.lexical
    return Candidates(lexical, dense, mode, notice, vector if dense else None)


def embed_ahead(index: VectorIndex, query: str, mode: Mode, model: str) -> Future | None:
    """Start embedding ``query`` now, while the store is asked other things first; None where
    no vector search will run (nothing embedded yet: the model is not even loaded)."""
    if mode == Mode.lexical or len(index) == 0:
        return None
    return _QUERY_POOL.submit(_query_vector, model, query)


def nothing_close(query: str, found: Candidates) -> bool:
    """No word of ``query`` matched (or it has stop words only), and nothing is close in meaning.

    The relevance cut-off compares each result with the best one, so on its own it would keep
    the top of any list, however unrelated: this judges the list as a whole.
    """
    if found.lexical and has_content_words(query):
        return False
    return max((cosine for _, cosine in found.dense), default=0.0) < WEAK_COSINE


def apply_cutoff(
    engine: Engine, query: str, found: Candidates, ranked: list[Fused]
) -> tuple[list[Fused], list[Fused]]:
    """``ranked`` split into what passes the relevance cut-off and the less close rest that is
    still offered on request; both empty when nothing is close to ``query``.

    A keyword candidate holding every word of the query always passes, whatever its scores.
    """
    if nothing_close(query, found):
        return [], []
    below = [f.seq for f in ranked if f.lexical is not None and not relevant(f)]
    with engine.connect() as connection:
        every_word = holding_every_word(connection, query, below)
    kept, rest = [], []
    for item in ranked:
        item.every_word = item.seq in every_word
        if relevant(item):
            kept.append(item)
        elif less_close(item):
            rest.append(item)
    return kept, rest


def empty_notice(engine: Engine, query: str, filters: SearchFilters) -> str:
    """Why a search found nothing: the filter that leaves no paper, or nothing close."""
    with engine.connect() as connection:
        why = why_nothing_passes(connection, filters)
    shown = query if len(query) <= 80 else query[:79] + "…"
    return why or f"No close matches for “{shown}”."


def search_papers(
    engine: Engine,
    request: SearchRequest,
    model: str = DEFAULT_MODEL,
    dense_weight: float = DENSE_WEIGHT,
) -> SearchResults:
    """Run ``request`` against the store (the same function serves the CLI, web and API)."""
    query = normalise_query(request.query)
    if not query:
        return SearchResults(query, request.mode, 0, [], "Type a few words to search.")
    index = vector_index(engine, model) if request.mode != Mode.lexical else None
    embedding = embed_ahead(index, query, request.mode, model) if index is not None else None
    exact = exact_matches(engine, query, request.filters)
    # an id or a name the store knows is no typo; other unknown words are searched corrected
    correction = correct_query(engine, query) if request.spell and not exact else None
    searched = correction.query if correction else query
    ahead = embedding if searched == query else None
    if ahead is None and embedding is not None:
        # embedding the words as typed may have loaded the model (this search's own load: one
        # under way elsewhere fails it at once): the corrected words wait for it, rather than
        # be told the model is warming up
        wait([embedding])
    found = retrieve(engine, searched, request.mode, request.filters, model, ahead, index)
    mode, notice = found.mode, found.notice
    with search_stage("fuse"):
        ranked: list[Fused] = fuse(found.lexical, found.dense, dense_weight)
    tail: list[Fused] = []
    if request.cutoff:
        ranked, tail = apply_cutoff(engine, searched, found, ranked)
    visible = _visible(engine, [f.seq for f in ranked + tail])
    named = set(exact)
    ranked = [f for f in ranked if f.seq in visible]
    tail = [f for f in tail if f.seq in visible and f.seq not in named]
    if request.sort == Sort.relevance:
        with search_stage("rerank"):
            ranked = rerank(engine, model, ranked, found.query_vector, query=searched)
    else:
        ranked.sort(key=_sort_key(request.sort, visible), reverse=True)
        tail.sort(key=_sort_key(request.sort, visible), reverse=True)
    ranked = _exact_first(ranked, exact)
    listed = ranked + tail if request.more else ranked
    if not listed:
        said = empty_notice(engine, query, request.filters)
        notice = f"{said} {notice}" if notice else said
    page = listed[request.offset : request.offset + request.limit]
    rows = paper_rows(engine, [f.seq for f in page])  # full rows for the page only
    # a paper deleted or hidden since the count above
    page = [f for f in page if f.seq in rows and rows[f.seq].get("hidden_at") is None]
    marks = _highlights(searched, rows)
    below = {f.seq for f in tail}
    hits = [
        SearchHit(
            rows[f.seq],
            f.score,
            f.lexical,
            f.dense,
            *marks.get(f.seq, (None, None)),
            explanation=explain(f, f.seq in named, request.cutoff),
            less_close=f.seq in below,
        )
        for f in page
    ]
    corrected = correction.query if correction else None
    return SearchResults(
        query, mode, len(listed), hits, notice, corrected_query=corrected, less_close=len(tail)
    )
