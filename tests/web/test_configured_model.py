"""The site searches with the model the admin configured, not only the default one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from broadsheet.config import Settings
from broadsheet.ingest.runner import import_file
from broadsheet.search.embed import DEFAULT_MODEL, SentenceTransformerEmbedder, register_model
from broadsheet.search.indexing import index_papers
from broadsheet.web.app import create_app

TOPICS = Path(__file__).parents[1] / "fixtures" / "daily_papers" / "topics.json"
OTHER_MODEL = "lab/other-minilm"


class OtherModel(SentenceTransformerEmbedder):
    """The packaged weights under another name, as an admin's own model would be stored."""

    def __init__(self, name: str, **kwargs) -> None:
        super().__init__(DEFAULT_MODEL, **kwargs)
        self.name = name


@pytest.fixture
def other_model() -> Iterator[str]:
    register_model(OTHER_MODEL, OtherModel)
    try:
        yield OTHER_MODEL
    finally:
        register_model(OTHER_MODEL, None)


def test_search_and_similar_use_the_configured_model(
    store: Engine, database_url: str, other_model: str
) -> None:
    from broadsheet.search.embed import load_embedder

    import_file(store, TOPICS)
    index_papers(store, load_embedder(other_model))  # only this model's vectors are stored
    settings = Settings(database_url=database_url, secret_key="t", embedding_model=other_model)
    with TestClient(create_app(settings)) as site:
        found = site.get("/api/papers/search", params={"q": "diffusion image synthesis"}).json()
        assert found["mode"] == "hybrid", found["notice"]
        paper_id = found["results"][0]["paper"]["id"]
        similar = site.get(f"/api/papers/{paper_id}/similar").json()
        assert similar, "similar papers come from the configured model's vectors"
