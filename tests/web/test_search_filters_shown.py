"""The search form offers only the filters the store can use: no Category field in a store
whose papers have no categories (it could only empty the results)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from broadsheet.papers.record import Paper
from broadsheet.papers.repository import upsert_papers


def _has_category_field(client: TestClient, query: str = "graphs") -> bool:
    return 'name="category"' in client.get(f"/search?q={query}").text


def test_the_category_filter_shows_only_where_papers_have_categories(
    client: TestClient, store: Engine
) -> None:
    with store.begin() as connection:
        upsert_papers(connection, [Paper("2401.00001", "Graphs", "About graphs.", "test")])
    assert not _has_category_field(client)
    # a link that names a category still shows it, to be seen and changed
    assert 'name="category"' in client.get("/search?q=graphs&category=cs.LG").text
    with store.begin() as connection:
        upsert_papers(
            connection,
            [Paper("2401.00002", "Trees", "About trees.", "test", categories=["cs.DS"])],
        )
    assert _has_category_field(client)
