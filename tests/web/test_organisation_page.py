"""An organisation's page leads with its full name, its short name beside it."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from broadsheet.config import Settings
from broadsheet.db.schema import organisations
from broadsheet.ingest.runner import import_file
from broadsheet.web.app import create_app

GOOD = Path(__file__).parents[1] / "fixtures" / "daily_papers" / "good.json"


def heading_and_title(client: TestClient, slug: str) -> tuple[str, str]:
    page = client.get(f"/organisations/{slug}")
    assert page.status_code == 200
    h1 = re.findall(r"<h1>(.*?)</h1>", page.text, re.S)
    assert len(h1) == 1
    title = re.search(r"<title>(.*?)</title>", page.text, re.S).group(1)
    return h1[0], title


def test_the_full_name_leads_with_the_short_name_beside_it(
    store: Engine, database_url: str
) -> None:
    import_file(store, GOOD)  # cartesia-ai, "Cartesia AI" in full
    client = TestClient(create_app(Settings(database_url=database_url, secret_key="test")))
    h1, title = heading_and_title(client, "cartesia-ai")
    assert h1 == "Cartesia AI <small>cartesia-ai</small>"
    assert title.startswith("Cartesia AI (cartesia-ai) · ")


def test_without_a_full_name_the_name_alone(store: Engine, database_url: str) -> None:
    import_file(store, GOOD)
    with store.begin() as connection:
        connection.execute(update(organisations).values(full_name=None))
    client = TestClient(create_app(Settings(database_url=database_url, secret_key="test")))
    h1, title = heading_and_title(client, "cartesia-ai")
    assert h1 == "cartesia-ai"
    assert title.startswith("cartesia-ai · ")
