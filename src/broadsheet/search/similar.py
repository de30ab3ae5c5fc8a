"""Papers similar to a paper: nearest neighbours of its vector, itself excluded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from broadsheet.db.schema import papers
from broadsheet.papers.repository import papers_by_seq
from broadsheet.search.embed import DEFAULT_MODEL, load_query_embedder, paper_text
from broadsheet.search.vectors import vector_index


class UnknownPaper(LookupError):
    pass


@dataclass(slots=True)
class SimilarPaper:
    paper: dict[str, Any]
    similarity: float  # cosine


def similar_papers(
    engine: Engine, paper_id: str, limit: int = 10, model: str = DEFAULT_MODEL
) -> list[SimilarPaper]:
    """The ``limit`` papers closest in meaning to ``paper_id`` (embedding it now if need be)."""
    with engine.connect() as connection:
        row = connection.execute(
            select(papers.c.seq, papers.c.title, papers.c.abstract).where(papers.c.id == paper_id)
        ).first()
    if row is None:
        raise UnknownPaper(f"no paper {paper_id!r} in the store")
    index = vector_index(engine, model)
    vector = index.vector_of(row.seq)
    if vector is None:
        vector = load_query_embedder(model).encode([paper_text(row.title, row.abstract)])[0]
    neighbours = index.search(vector, limit, exclude=row.seq)
    with engine.connect() as connection:
        rows = papers_by_seq(connection, [seq for seq, _ in neighbours])
    return [SimilarPaper(rows[seq], score) for seq, score in neighbours if seq in rows]
