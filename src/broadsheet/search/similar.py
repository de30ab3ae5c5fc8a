"""Papers similar to a paper: nearest neighbours of its stored vector, itself excluded.

Only stored vectors are read. A paper that ``broadsheet index`` has not embedded yet has no
similar papers until it does: embedding on a page view would load the model into the web
worker and cost every visitor of that page the embedding's time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from broadsheet.db.schema import papers
from broadsheet.feed.cards import card
from broadsheet.papers.repository import papers_by_seq
from broadsheet.search.embed import DEFAULT_MODEL
from broadsheet.search.vectors import vector_index


class UnknownPaper(LookupError):
    pass


@dataclass(slots=True)
class SimilarPaper:
    paper: dict[str, Any]  # as a card (bounded texts)
    similarity: float  # cosine


def similar_papers(
    engine: Engine, paper_id: str, limit: int = 10, model: str = DEFAULT_MODEL
) -> list[SimilarPaper]:
    """The ``limit`` papers closest in meaning to ``paper_id``; none while it has no vector."""
    with engine.connect() as connection:
        seq = connection.execute(
            select(papers.c.seq).where(papers.c.id == paper_id)
        ).scalar_one_or_none()
    if seq is None:
        raise UnknownPaper(f"no paper {paper_id!r} in the store")
    index = vector_index(engine, model)
    vector = index.vector_of(seq)
    if vector is None:
        return []
    neighbours = index.search(vector, limit, exclude=seq)
    with engine.connect() as connection:
        rows = papers_by_seq(connection, [s for s, _ in neighbours])
    return [SimilarPaper(card(rows[s]), score) for s, score in neighbours if s in rows]
