"""An organisation's page: who it is and its papers, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from broadsheet.db.schema import organisations, papers
from broadsheet.feed.cards import card
from broadsheet.feed.views import CARD_COLUMNS


@dataclass(slots=True)
class OrganisationPage:
    slug: str
    name: str
    full_name: str | None
    papers: list[dict[str, Any]]  # this page's cards
    total: int  # visible papers in all
    votes: int  # their upvotes together

    @property
    def heading(self) -> str:
        """What the page leads with: the full name when known ("Cartesia AI"), else the name."""
        return (self.full_name or "").strip() or self.name

    @property
    def short_name(self) -> str | None:
        """The name as the feed shows it ("cartesia-ai"), when the heading says something else."""
        return None if self.heading == self.name else self.name


def organisation_page(
    connection: Connection, slug: str, limit: int = 30, offset: int = 0
) -> OrganisationPage | None:
    """The organisation called ``slug`` (letter case ignored), or None when there is none."""
    org = connection.execute(
        select(organisations).where(func.lower(organisations.c.slug) == slug.lower())
    ).first()
    if org is None:
        return None
    visible = (papers.c.organisation_id == org.id, papers.c.hidden_at.is_(None))
    total, votes = connection.execute(
        select(
            func.count(),
            func.coalesce(func.sum(papers.c.upvotes + papers.c.member_votes), 0),
        ).where(*visible)
    ).one()
    rows = connection.execute(
        select(*CARD_COLUMNS)
        .select_from(papers.join(organisations, organisations.c.id == papers.c.organisation_id))
        .where(*visible)
        .order_by(papers.c.published_at.desc().nulls_last(), papers.c.id.desc())
        .limit(limit)
        .offset(offset)
    ).mappings()
    return OrganisationPage(
        org.slug, org.name, org.full_name, [card(dict(r)) for r in rows], int(total), int(votes)
    )
