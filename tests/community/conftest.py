"""A store with a few papers for members to vote on and comment on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy import Engine, func

from broadsheet.db.schema import papers
from broadsheet.papers.record import FeedPlacement, Organisation, Paper
from broadsheet.papers.repository import upsert_papers


def make_paper(paper_id: str, upvotes: int = 0, organisation: Organisation | None = None) -> Paper:
    return Paper(
        id=paper_id,
        title_raw=f"Paper {paper_id}",
        abstract_raw=f"The abstract of {paper_id}.",
        source="test",
        authors=["Ada Lovelace"],
        published_at=datetime(2024, 1, 10, 12),
        organisation=organisation,
        feed=FeedPlacement(day=datetime(2024, 1, 10).date(), source="test"),
        upvotes=upvotes,
    )


@pytest.fixture
def papers_store(store: Engine) -> Engine:
    with store.begin() as connection:
        upsert_papers(connection, [make_paper("2401.00001", upvotes=3), make_paper("2401.00002")])
    return store


@pytest.fixture
def hide(papers_store: Engine) -> Callable[[str], None]:
    """Hide a paper as a moderator does."""

    def hide_paper(paper_id: str) -> None:
        with papers_store.begin() as connection:
            connection.execute(
                papers.update().where(papers.c.id == paper_id).values(hidden_at=func.now())
            )

    return hide_paper
