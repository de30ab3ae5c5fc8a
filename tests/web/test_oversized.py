"""A paper with a 10 MB abstract costs its own page, not every visitor of every list."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from broadsheet.db.schema import papers
from broadsheet.feed.cards import CARD_ABSTRACT_CHARS
from broadsheet.papers.record import FeedPlacement, Organisation, Paper
from broadsheet.papers.repository import upsert_papers
from broadsheet.search.embed import SentenceTransformerEmbedder
from web.conftest import make_client

DAY = date(2024, 1, 10)
HUGE = "Sparse attention scales. " * 400_000  # 10 MB
LIST_BYTES = 200_000  # a page of cards, with room to spare


@pytest.fixture
def huge_client(store: Engine, database_url: str) -> Iterator[TestClient]:
    org = Organisation("bigco", "BigCo")
    batch = [
        Paper(
            id=f"2401.0000{n}",
            title_raw=f"Sparse attention, part {n}",
            abstract_raw="Sparse attention scales.",
            source="test",
            organisation=org,
            published_at=datetime(2024, 1, 9),
            feed=FeedPlacement(DAY, "test"),
        )
        for n in (1, 2)
    ]
    with store.begin() as connection:
        upsert_papers(connection, batch)
        # stored as is, past the importer: the lists must hold by themselves
        connection.execute(update(papers).where(papers.c.id == "2401.00001").values(abstract=HUGE))
    with make_client(database_url) as client:
        yield client


@pytest.fixture
def embeddings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The length of every text handed to an embedding model while the test runs."""
    seen: list[int] = []
    real = SentenceTransformerEmbedder.encode

    def recording(self, texts, *args, **kwargs):
        seen.extend(len(t) for t in texts)
        return real(self, texts, *args, **kwargs)

    monkeypatch.setattr(SentenceTransformerEmbedder, "encode", recording)
    return seen


def test_paper_page_of_a_huge_paper_embeds_nothing(
    huge_client: TestClient, embeddings: list[int]
) -> None:
    page = huge_client.get("/papers/2401.00001")
    assert page.status_code == 200 and "Sparse attention scales." in page.text
    similar = huge_client.get("/api/papers/2401.00001/similar")
    assert similar.status_code == 200 and similar.json() == []  # not indexed yet: none
    assert huge_client.get("/api/papers/2401.00001").json()["summary"] == HUGE
    assert embeddings == []


@pytest.mark.parametrize(
    "path",
    [
        f"/?date={DAY}",
        "/organisations/bigco",
        "/search?q=sparse+attention",
        f"/feed.atom?date={DAY}",
        "/search.atom?q=sparse+attention",
        f"/api/daily_papers?date={DAY}",
        "/api/papers/search?q=sparse+attention",
    ],
)
def test_lists_send_a_bounded_preview_of_a_huge_paper(huge_client: TestClient, path: str) -> None:
    response = huge_client.get(path)
    assert response.status_code == 200
    assert "2401.00001" in response.text
    assert len(response.content) < LIST_BYTES


def test_api_lists_clip_the_summary_to_the_documented_maximum(huge_client: TestClient) -> None:
    entries = huge_client.get("/api/daily_papers", params={"date": DAY.isoformat()}).json()
    summaries = {e["paper"]["id"]: e["paper"]["summary"] for e in entries}
    assert len(summaries["2401.00001"]) == CARD_ABSTRACT_CHARS + 1
    assert summaries["2401.00001"].endswith("…") and HUGE.startswith(summaries["2401.00001"][:-1])
    assert summaries["2401.00002"] == "Sparse attention scales."
    schema = huge_client.get("/openapi.json").json()
    assert (
        f"{CARD_ABSTRACT_CHARS:,}"
        in schema["components"]["schemas"]["PaperOut"]["properties"]["summary"]["description"]
    )
