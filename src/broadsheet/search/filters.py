"""Search filters (dates, category, organisation, votes) as SQL conditions on ``papers``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from sqlalchemy import ColumnElement, exists, select

from broadsheet.db.schema import organisations, paper_categories, papers


@dataclass(frozen=True, slots=True)
class SearchFilters:
    since: date | None = None
    until: date | None = None
    category: str | None = None  # "cs.LG", or an archive such as "cs"
    organisation: str | None = None  # organisation slug
    min_upvotes: int | None = None

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
