from __future__ import annotations

import pytest
from sqlalchemy import Engine, update

from broadsheet.db.schema import papers
from broadsheet.feed.cards import CARD_ABSTRACT_CHARS
from broadsheet.papers.record import Paper
from broadsheet.papers.repository import upsert_papers
from broadsheet.search.embed import load_embedder
from broadsheet.search.indexing import index_papers
from broadsheet.search.similar import UnknownPaper, similar_papers


def test_similar_papers_exclude_the_paper_and_rank_by_meaning(topics_store: Engine) -> None:
    found = similar_papers(topics_store, "2401.00001", limit=5)
    ids = [s.paper["id"] for s in found]
    assert "2401.00001" not in ids and len(ids) == 5
    assert [s.similarity for s in found] == sorted((s.similarity for s in found), reverse=True)
    assert similar_papers(topics_store, "2401.00010", limit=1)[0].paper["id"] in {
        "2401.00002",
        "2401.00007",
    }


def test_a_paper_without_a_vector_has_none_until_indexed(topics_store: Engine) -> None:
    with topics_store.begin() as connection:
        upsert_papers(
            connection,
            [
                Paper(
                    id="2402.00002",
                    title_raw="Diffusion models for video generation",
                    abstract_raw="We extend image diffusion to video.",
                    source="test",
                )
            ],
        )
    assert similar_papers(topics_store, "2402.00002", limit=1) == []  # nothing embedded here
    index_papers(topics_store, load_embedder())
    assert similar_papers(topics_store, "2402.00002", limit=1)[0].paper["id"] == "2401.00003"


def test_similar_papers_are_cards_with_bounded_texts(topics_store: Engine) -> None:
    huge = "Video diffusion. " * 600_000  # 10 MB, stored past the importer
    with topics_store.begin() as connection:
        connection.execute(update(papers).where(papers.c.id == "2401.00003").values(abstract=huge))
    found = {s.paper["id"]: s.paper for s in similar_papers(topics_store, "2401.00010", limit=9)}
    assert len(found["2401.00003"]["abstract"]) == CARD_ABSTRACT_CHARS + 1


def test_unknown_paper(topics_store: Engine) -> None:
    with pytest.raises(UnknownPaper):
        similar_papers(topics_store, "9999.99999")
