from __future__ import annotations

import pytest
from sqlalchemy import Engine

from broadsheet.papers.record import Paper
from broadsheet.papers.repository import upsert_papers
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


def test_a_paper_without_a_vector_is_embedded_on_the_fly(topics_store: Engine) -> None:
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
    assert similar_papers(topics_store, "2402.00002", limit=1)[0].paper["id"] == "2401.00003"


def test_unknown_paper(topics_store: Engine) -> None:
    with pytest.raises(UnknownPaper):
        similar_papers(topics_store, "9999.99999")
