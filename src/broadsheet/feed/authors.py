"""An author's page: their visible papers, newest first, and who they wrote them with.

Names are matched as stored (the index on ``authors.name``), else ignoring letter case (ASCII,
as SQLite's ``lower`` does) among the names that start with the same two letters in any case,
so a lookup reads a thin slice of the index, never every author.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, exists, func, select, union_all

from broadsheet.db.schema import authors, organisations, paper_authors, papers
from broadsheet.feed.cards import card
from broadsheet.feed.views import CARD_COLUMNS

MAX_NAME_CHARS = 300  # far above real names; longer text is not looked up
MAX_COAUTHORS = 30  # the most frequent ones are shown
_LAST_CHAR = "\U0010ffff"


@dataclass(frozen=True, slots=True)
class Author:
    id: int
    name: str


@dataclass(slots=True)
class AuthorPage:
    name: str
    papers: list[dict[str, Any]]  # this page's cards
    total: int  # visible papers in all
    coauthors: list[tuple[str, int]]  # name and papers shared, most shared first


def _visible_papers_of(author_id: int):
    """The ids of the author's papers that are not hidden (a subquery)."""
    return (
        select(paper_authors.c.paper_id)
        .join(papers, papers.c.id == paper_authors.c.paper_id)
        .where(paper_authors.c.author_id == author_id, papers.c.hidden_at.is_(None))
    )


def _starts_with(start: str) -> ColumnElement[bool]:
    """Names starting with ``start``, as a range the index on ``name`` answers."""
    return and_(authors.c.name >= start, authors.c.name < start + _LAST_CHAR)


def find_author(connection: Connection, name: str) -> Author | None:
    """The author called ``name`` (letter case ignored) with at least one visible paper."""
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME_CHARS or "\x00" in name:  # no stored name holds NUL
        return None
    shown = exists(_visible_papers_of(authors.c.id))
    row = connection.execute(select(authors).where(authors.c.name == name, shown)).first()
    if row is None:
        # one indexed range per letter case of the first letters; one query per range, as
        # SQLite plans an OR of ranges with unknown bounds as a scan of every author
        starts = sorted({"".join(p) for p in product(*({c.lower(), c.upper()} for c in name[:2]))})
        each_range = [
            select(authors.c.id, authors.c.name).where(
                _starts_with(start), func.lower(authors.c.name) == name.lower(), shown
            )
            for start in starts
        ]
        found = union_all(*each_range).subquery()
        row = connection.execute(select(found).order_by(found.c.id).limit(1)).first()
    return None if row is None else Author(row.id, row.name)


def author_paper_ids(connection: Connection, author: Author, limit: int) -> list[str]:
    """The ids of the author's visible papers, newest first."""
    return list(
        connection.execute(
            select(papers.c.id)
            .where(papers.c.id.in_(_visible_papers_of(author.id)))
            .order_by(papers.c.published_at.desc().nulls_last(), papers.c.id.desc())
            .limit(limit)
        ).scalars()
    )


def _coauthors(connection: Connection, author: Author) -> list[tuple[str, int]]:
    shared = func.count(paper_authors.c.paper_id.distinct())
    rows = connection.execute(
        select(authors.c.name, shared)
        .join(authors, authors.c.id == paper_authors.c.author_id)
        .where(
            paper_authors.c.paper_id.in_(_visible_papers_of(author.id)),
            paper_authors.c.author_id != author.id,
        )
        .group_by(authors.c.id)
        .order_by(shared.desc(), authors.c.name)
        .limit(MAX_COAUTHORS)
    )
    return [(name, int(count)) for name, count in rows]


def author_page(
    connection: Connection, name: str, limit: int = 30, offset: int = 0
) -> AuthorPage | None:
    """The author called ``name``, or None when no visible paper has that author."""
    author = find_author(connection, name)
    if author is None:
        return None
    visible = papers.c.id.in_(_visible_papers_of(author.id))
    total = connection.execute(select(func.count()).select_from(papers).where(visible)).scalar()
    rows = connection.execute(
        select(*CARD_COLUMNS)
        .select_from(
            papers.outerjoin(organisations, organisations.c.id == papers.c.organisation_id)
        )
        .where(visible)
        .order_by(papers.c.published_at.desc().nulls_last(), papers.c.id.desc())
        .limit(limit)
        .offset(offset)
    ).mappings()
    return AuthorPage(
        author.name, [card(dict(r)) for r in rows], int(total or 0), _coauthors(connection, author)
    )
