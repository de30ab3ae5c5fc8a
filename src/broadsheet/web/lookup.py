"""What a search box query names outright: a paper by its arXiv id, or an author by name."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from fastapi import Request

from broadsheet.feed.authors import find_author
from broadsheet.search.hybrid import typed_arxiv_id
from broadsheet.web.auth import current_member
from broadsheet.web.queries import load_paper
from broadsheet.web.stores import read_engine


@dataclass(frozen=True, slots=True)
class QueryLookup:
    paper_url: str | None = None  # the query is the id of a paper shown here: open it
    missing_id: str | None = None  # the query is an arXiv id this store does not show
    author: str | None = None  # the query is the name of an author with papers here


def paper_url(paper_id: str) -> str:
    return "/papers/" + quote(paper_id, safe="/")


def author_url(name: str) -> str:
    return "/authors/" + quote(name, safe="/")


def look_up_query(request: Request, query: str) -> QueryLookup:
    """The paper whose id ``query`` is (hidden ones for admins only), or the author it names."""
    engine = read_engine(request)
    paper_id = typed_arxiv_id(query)
    if paper_id is not None:
        member = current_member(request)
        is_admin = member is not None and member.is_admin
        if load_paper(engine, paper_id, include_hidden=is_admin) is None:
            return QueryLookup(missing_id=paper_id)
        return QueryLookup(paper_url=paper_url(paper_id))
    with engine.connect() as connection:
        author = find_author(connection, query)
    return QueryLookup(author=author.name if author else None)
