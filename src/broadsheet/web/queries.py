"""What the pages and the API ask of the store and of search, parsed from request parameters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from fastapi import Path, Query
from fastapi.exceptions import RequestValidationError
from pydantic import Field
from sqlalchemy import Engine

from broadsheet.feed.periods import FIRST_DAY, LAST_DAY, Period
from broadsheet.feed.views import FeedPage, FeedSort, default_feed_day, feed_page
from broadsheet.papers.ids import canonical_id
from broadsheet.papers.repository import get_paper
from broadsheet.search.embed import DEFAULT_MODEL
from broadsheet.search.filters import DateRangeReversed, SearchFilters
from broadsheet.search.hybrid import SearchRequest, SearchResults, Sort, search_papers
from broadsheet.search.similar import SimilarPaper, similar_papers

PAGE_SIZE = 30
MAX_UPVOTES = 1_000_000_000  # far above any paper's votes, far below SQLite's 64-bit limit
# Every date a request may name (the feed's days; search dates alike).
Day = Annotated[
    date,
    Field(
        ge=FIRST_DAY,
        le=LAST_DAY,
        description=f"YYYY-MM-DD, from {FIRST_DAY} to {LAST_DAY}",
    ),
]
# Stored ids are at most 64 characters; any spelling of one (a URL, a version) fits in this.
PaperIdPath = Annotated[
    str, Path(max_length=200, description="An arXiv id in any spelling, or a stored id")
]


def load_feed(
    engine: Engine,
    day: date | None,
    period: Period,
    sort: FeedSort,
    page: int = 1,
    personal: Callable[[list[str]], Mapping[str, float]] | None = None,
) -> FeedPage | None:
    """The feed for ``day`` (default: the latest day with papers); None on an empty store."""
    with engine.connect() as connection:
        day = day or default_feed_day(connection)
        if day is None:
            return None
        offset = (page - 1) * PAGE_SIZE
        return feed_page(
            connection, period, day, sort, limit=PAGE_SIZE, offset=offset, personal=personal
        )


def load_paper(
    engine: Engine, paper_id: str, *, include_hidden: bool = False
) -> dict[str, Any] | None:
    """A stored paper by any spelling of its id; hidden ones only when asked (for admins)."""
    with engine.connect() as connection:
        paper = get_paper(connection, canonical_id(paper_id))
    if paper is None or (paper.get("hidden_at") is not None and not include_hidden):
        return None
    return paper


def load_similar(
    engine: Engine, paper_id: str, limit: int = 5, model: str = DEFAULT_MODEL
) -> list[SimilarPaper]:
    """Similar papers, or none when semantic search is unavailable (no model, no vectors)."""
    try:
        found = similar_papers(engine, paper_id, limit=limit + 5, model=model)
    except Exception:  # an optional panel: the paper page must render without it
        return []
    return [s for s in found if s.paper.get("hidden_at") is None][:limit]


def run_search(
    engine: Engine,
    query: str,
    filters: SearchFilters,
    sort: Sort = Sort.relevance,
    page: int = 1,
    limit: int = PAGE_SIZE,
    spell: bool = True,
    model: str = DEFAULT_MODEL,
    more: bool = False,
) -> SearchResults:
    offset = (page - 1) * limit
    request = SearchRequest(
        query, filters, sort, limit=limit, offset=offset, spell=spell, more=more
    )
    return search_papers(engine, request, model=model)


class ReversedDateRange(RequestValidationError):
    """``until`` before ``since``, refused like any value that cannot be read (422)."""

    def __init__(self, problem: DateRangeReversed) -> None:
        error = {"type": "until_before_since", "loc": ("query", "until"), "msg": str(problem)}
        super().__init__([{**error, "input": problem.until.isoformat()}])


@dataclass(slots=True)
class SearchParams:
    q: str
    filters: SearchFilters
    sort: Sort
    page: int


def search_params(
    q: Annotated[str, Query(max_length=10_000, description="Words, in your own phrasing")] = "",
    since: Annotated[Day | None, Query(description="Published on or after (YYYY-MM-DD)")] = None,
    until: Annotated[Day | None, Query(description="Published on or before (YYYY-MM-DD)")] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    organisation: Annotated[str | None, Query(max_length=200)] = None,
    min_upvotes: Annotated[int | None, Query(ge=0, le=MAX_UPVOTES)] = None,
    sort: Sort = Sort.relevance,
    page: Annotated[int, Query(ge=1, le=1000)] = 1,
) -> SearchParams:
    """The search parameters the page and the API share (a FastAPI dependency)."""
    try:
        filters = SearchFilters(since, until, category or None, organisation or None, min_upvotes)
    except DateRangeReversed as problem:
        raise ReversedDateRange(problem) from None
    return SearchParams(q, filters, sort, page)
