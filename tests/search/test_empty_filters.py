"""A filtered search that finds nothing says which filter excluded every paper."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine

from broadsheet.papers.record import Paper
from broadsheet.papers.repository import upsert_papers
from broadsheet.search.filters import DateRangeReversed, SearchFilters
from broadsheet.search.hybrid import SearchRequest, search_papers


def notice_for(store: Engine, filters: SearchFilters, query: str = "pooling") -> str | None:
    results = search_papers(store, SearchRequest(query, filters))
    assert results.total == 0 and results.hits == []
    return results.notice


def test_a_category_on_a_store_without_categories(topics_store: Engine) -> None:
    notice = notice_for(topics_store, SearchFilters(category="cs.LG"))
    assert notice == "No paper in this store has a category, so none is in “cs.LG”."


def test_a_category_no_paper_is_in(store: Engine) -> None:
    paper = Paper("2401.00001", "Pooling sets", "Pooling.", "test", categories=["cs.LG"])
    with store.begin() as connection:
        upsert_papers(connection, [paper])
    assert search_papers(store, SearchRequest("pooling", SearchFilters(category="cs"))).total == 1
    notice = notice_for(store, SearchFilters(category="math.AG"))
    assert notice.startswith("No paper is in “math.AG”. Semantic index not built yet")


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (SearchFilters(organisation="nobody"), "No paper is from the organisation “nobody”."),
        (SearchFilters(min_upvotes=10_000), "No paper has 10,000 votes or more."),
        (
            SearchFilters(since=date(2030, 1, 1)),
            "No paper was published from 2030-01-01.",
        ),
        (
            SearchFilters(until=date(2000, 1, 1)),
            "No paper was published until 2000-01-01.",
        ),
        (
            SearchFilters(since=date(2020, 1, 1), until=date(2020, 12, 31)),
            "No paper was published from 2020-01-01 until 2020-12-31.",
        ),
    ],
)
def test_the_filter_that_excludes_everything_is_named(
    topics_store: Engine, filters: SearchFilters, expected: str
) -> None:
    assert notice_for(topics_store, filters) == expected


def test_filters_that_exclude_everything_only_together(topics_store: Engine) -> None:
    # diffusionlab's one paper (150 votes) was published on 2024-01-04
    filters = SearchFilters(organisation="diffusionlab", min_upvotes=1_000)
    assert notice_for(topics_store, filters) == "No paper has 1,000 votes or more."
    together = SearchFilters(organisation="diffusionlab", since=date(2024, 1, 5))
    assert notice_for(topics_store, together) == "No paper matches all these filters together."


def test_a_reversed_date_range_is_refused() -> None:
    with pytest.raises(DateRangeReversed, match=r"until \(2024-01-01\) is before since"):
        SearchFilters(since=date(2024, 2, 1), until=date(2024, 1, 1))
    assert SearchFilters(since=date(2024, 1, 1), until=date(2024, 1, 1)).until


def test_a_matching_filter_keeps_the_search_notice(topics_store: Engine) -> None:
    kept = search_papers(topics_store, SearchRequest("zxqvw plokjh", SearchFilters(min_upvotes=1)))
    assert kept.total == 0 and kept.notice == "No close matches for “zxqvw plokjh”."
