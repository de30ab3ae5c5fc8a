"""The JSON API: daily papers (in the shape of the public daily-papers API), papers, search."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from broadsheet.feed.cards import CARD_ABSTRACT_CHARS, CARD_AUTHORS
from broadsheet.feed.periods import Period
from broadsheet.feed.views import FeedSort, default_feed_day, feed_page
from broadsheet.papers.present import paper_json
from broadsheet.web.format import marked
from broadsheet.web.queries import (
    Day,
    PaperIdPath,
    SearchParams,
    canonical_id,
    load_paper,
    load_similar,
    run_search,
    search_params,
)
from broadsheet.web.stores import read_engine

router = APIRouter(prefix="/api", tags=["papers"])


class Author(BaseModel):
    name: str


class Organisation(BaseModel):
    name: str
    slug: str
    fullname: str | None = None


class PaperOut(BaseModel):
    id: str = Field(description="arXiv id without version (or `corpus:id`)")
    version: int | None = None
    title: str
    summary: str = Field(
        description=(
            "The abstract, cleaned for display. Lists (daily papers, search, similar) send at "
            f"most {CARD_ABSTRACT_CHARS:,} characters, then '…'; /api/papers/{{id}} sends it whole"
        )
    )
    authors: list[Author] = Field(description=f"Lists send at most {CARD_AUTHORS:,} names")
    publishedAt: str | None = None
    upvotes: int = Field(description="Imported upvotes plus members' votes")
    numComments: int = 0
    categories: list[str] = []
    organization: Organisation | None = None
    links: dict[str, str] = {}


class DailyPaperOut(BaseModel):
    paper: PaperOut
    title: str
    publishedAt: str


class ExplanationOut(BaseModel):
    lexical: float | None = Field(description="BM25 for the query's words; null: no keyword match")
    lexical_scaled: float = Field(description="As fused: a fraction of the best BM25")
    dense: float | None = Field(
        description="Cosine of the paper's vector; null: not among the closest"
    )
    dense_scaled: float = Field(description="As fused: min-max among the closest papers")
    fused: float = Field(description="The fused score the cut-off reads")
    passage: float | None = Field(
        description="Cosine of the closest abstract sentence (reranked only)"
    )
    rerank: float | None = Field(description="The second stage's score (the first results only)")
    exact_words: float | None = Field(
        description="Share of the query's words the paper holds as written (reranked only)"
    )
    kept_because: str = Field(
        description="Why the result passed the relevance cut-off (or that it is a less close one)"
    )


class SearchHitOut(BaseModel):
    paper: PaperOut
    score: float = Field(description="Fused relevance in [0, 1]")
    highlight: str | None = Field(None, description="Best abstract window, terms in <mark>")
    explain: ExplanationOut | None = Field(None, description="With `explain=true` only")
    less_close: bool = Field(
        False, description="Below the relevance cut-off: listed because `more=true` asked"
    )


class SearchOut(BaseModel):
    query: str
    mode: str = Field(
        description="What ran: hybrid, or lexical when vectors are missing or cannot be "
        "searched (a PostgreSQL store without pgvector)",
    )
    total: int = Field(
        description="Results listed: those above the relevance cut-off, and with `more=true` "
        "the less close ones after them"
    )
    less_close: int = Field(
        0,
        description="Results below the relevance cut-off, still related: listed after the "
        "others (and counted in `total`) with `more=true`",
    )
    notice: str | None = None
    corrected_query: str | None = Field(
        None, description="What was searched for instead, when words of `query` are not known"
    )
    results: list[SearchHitOut]


class SimilarOut(BaseModel):
    paper: PaperOut
    similarity: float


def paper_out(row: dict[str, Any]) -> dict[str, Any]:
    data = paper_json(row)
    data["upvotes"] = row["upvotes"] + row.get("member_votes", 0)
    data["numComments"] = row.get("comment_count", 0)
    return data


@router.get("/daily_papers", response_model=list[DailyPaperOut])
def daily_papers(
    request: Request,
    day: Annotated[Day | None, Query(alias="date")] = None,
    sort: FeedSort = FeedSort.trending,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    """The papers put on the feed on ``date`` (default: the latest day with papers up to today)."""
    with read_engine(request).connect() as connection:
        day = day or default_feed_day(connection)
        if day is None:
            return []
        page = feed_page(connection, Period.daily, day, sort, limit=limit)
    entries = []
    for row in page.papers:
        featured = datetime.combine(row["feed_day"], time()).isoformat() + "Z"
        entries.append({"paper": paper_out(row), "title": row["title"], "publishedAt": featured})
    return entries


@router.get("/papers/search", response_model=SearchOut)
def search(
    request: Request,
    params: Annotated[SearchParams, Depends(search_params)],
    limit: Annotated[int, Query(ge=1, le=100)] = 30,
    exact: Annotated[bool, Query(description="Search the words as typed, uncorrected")] = False,
    explain: Annotated[
        bool, Query(description="Add each result's scores by stage and why it was kept")
    ] = False,
    more: Annotated[
        bool, Query(description="List the less close results (below the cut-off) too")
    ] = False,
) -> dict[str, Any]:
    """Hybrid (keyword + semantic) search with a relevance cut-off.

    Words the store does not know are corrected from its own vocabulary (``corrected_query``
    says so); ``exact=true`` searches the words as typed. A paper holding every word of the
    query always passes the cut-off; ``less_close`` counts the related results below it,
    which ``more=true`` lists after the others.
    """
    engine = read_engine(request)
    found = run_search(
        engine,
        params.q,
        params.filters,
        params.sort,
        params.page,
        limit,
        spell=not exact,
        model=request.app.state.settings.embedding_model,
        more=more,
    )
    return {
        "query": found.query,
        "mode": found.mode.value,
        "total": found.total,
        "less_close": found.less_close,
        "notice": found.notice,
        "corrected_query": found.corrected_query,
        "results": [
            {
                "paper": paper_out(hit.paper),
                "score": hit.score,
                "highlight": str(marked(hit.abstract_highlight))
                if hit.abstract_highlight
                else None,
                "explain": hit.explanation.as_dict() if explain and hit.explanation else None,
                "less_close": hit.less_close,
            }
            for hit in found.hits
        ],
    }


@router.get("/papers/{paper_id:path}/similar", response_model=list[SimilarOut])
def similar(
    request: Request, paper_id: PaperIdPath, limit: Annotated[int, Query(ge=1, le=50)] = 10
) -> list[dict[str, Any]]:
    """Papers closest in meaning (by embedding), the paper itself excluded."""
    engine = read_engine(request)
    if load_paper(engine, paper_id) is None:
        raise HTTPException(404, f"No paper {paper_id!r} here.")
    return [
        {"paper": paper_out(s.paper), "similarity": s.similarity}
        for s in load_similar(
            engine, canonical_id(paper_id), limit, request.app.state.settings.embedding_model
        )
    ]


@router.get("/papers/{paper_id:path}", response_model=PaperOut)
def paper(request: Request, paper_id: PaperIdPath) -> dict[str, Any]:
    found = load_paper(read_engine(request), paper_id)
    if found is None:
        raise HTTPException(404, f"No paper {paper_id!r} here.")
    return paper_out(found)
