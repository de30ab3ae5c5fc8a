"""Search filters (dates, category, organisation, votes) as SQL conditions on ``papers``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from sqlalchemy import ColumnElement, Connection, exists, select

from broadsheet.db.schema import organisations, paper_categories, papers


class DateRangeReversed(ValueError):
    """``until`` is before ``since``: no paper could ever match."""

    def __init__(self, since: date, until: date) -> None:
        super().__init__(f"until ({until}) is before since ({since})")
        self.since, self.until = since, until


@dataclass(frozen=True, slots=True)
class SearchFilters:
    since: date | None = None
    until: date | None = None
    category: str | None = None  # "cs.LG", or an archive such as "cs"
    organisation: str | None = None  # organisation slug
    min_upvotes: int | None = None

    def __post_init__(self) -> None:
        if self.since and self.until and self.until < self.since:
            raise DateRangeReversed(self.since, self.until)

    def is_empty(self) -> bool:
        return not any(
            v is not None
            for v in (self.since, self.until, self.category, self.organisation, self.min_upvotes)
        )

    def conditions(self) -> list[ColumnElement[bool]]:
        """SQL conditions on ``papers`` (and joined tables by subquery) for these filters."""
        found: list[ColumnElement[bool]] = []
        if self.since:
            found.append(papers.c.published_at >= datetime.combine(self.since, time.min))
        if self.until:
            found.append(papers.c.published_at <= datetime.combine(self.until, time.max))
        if self.category:
            column = paper_categories.c.category
            # autoescape: "%" and "_" in what the visitor typed match only themselves
            match = column.startswith(self.category + ".", autoescape=True) | (
                column == self.category
            )
            found.append(exists().where(paper_categories.c.paper_id == papers.c.id, match))
        if self.organisation:
            found.append(
                papers.c.organisation_id.in_(
                    select(organisations.c.id).where(organisations.c.slug == self.organisation)
                )
            )
        if self.min_upvotes:
            found.append(papers.c.upvotes >= self.min_upvotes)
        return found


def _one_at_a_time(filters: SearchFilters) -> list[tuple[SearchFilters, str]]:
    """Each filter alone (the dates as one), with what to say when it leaves no paper."""
    found = []
    if filters.since or filters.until:
        since = f" from {filters.since}" if filters.since else ""
        until = f" until {filters.until}" if filters.until else ""
        dates = SearchFilters(since=filters.since, until=filters.until)
        found.append((dates, f"No paper was published{since}{until}."))
    if filters.category:
        found.append(
            (SearchFilters(category=filters.category), f"No paper is in “{filters.category}”.")
        )
    if filters.organisation:
        found.append(
            (
                SearchFilters(organisation=filters.organisation),
                f"No paper is from the organisation “{filters.organisation}”.",
            )
        )
    if filters.min_upvotes:
        found.append(
            (
                SearchFilters(min_upvotes=filters.min_upvotes),
                f"No paper has {filters.min_upvotes:,} votes or more.",
            )
        )
    return found


def why_nothing_passes(connection: Connection, filters: SearchFilters) -> str | None:
    """Which of ``filters`` leaves no visible paper at all, in plain words; None if none does.

    One EXISTS query per filter (stopping at the first paper found), so it is cheap enough to
    ask whenever a filtered search comes back empty.
    """

    def any_paper(conditions: list[ColumnElement[bool]]) -> bool:
        query = select(exists().where(papers.c.hidden_at.is_(None), *conditions))
        return bool(connection.execute(query).scalar())

    if filters.is_empty():
        return None
    has_categories = select(exists().select_from(paper_categories))
    if filters.category and not connection.execute(has_categories).scalar():
        return f"No paper in this store has a category, so none is in “{filters.category}”."
    for alone, message in _one_at_a_time(filters):
        if not any_paper(alone.conditions()):
            return message
    if not any_paper(filters.conditions()):
        return "No paper matches all these filters together."
    return None


def store_has_categories(connection: Connection) -> bool:
    """Whether any paper has a category (a BEIR corpus or daily-papers store may have none,
    and then a category filter could only ever empty the results)."""
    return connection.execute(select(paper_categories.c.category).limit(1)).first() is not None
