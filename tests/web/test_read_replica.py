"""A read-only replica for search and pages: visitors' reads go there, every write to the main
store, and a replica is never migrated (nor written to at all)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text

from broadsheet.config import Settings
from broadsheet.db.engine import alembic_config, make_engine, migrate
from broadsheet.db.schema import comments, papers, users, votes
from broadsheet.db.version import current_version
from broadsheet.papers.record import FeedPlacement, Paper
from broadsheet.papers.repository import upsert_papers
from broadsheet.web.app import create_app
from databases import ON_POSTGRES, drop_database, new_database_url
from web.conftest import form_token

PASSWORD = "long enough password"
SHARED = "2401.00001"  # on both stores, titled after the store that holds it
ON_MAIN, ON_REPLICA = "2401.00002", "2401.00003"


def _paper(paper_id: str, title: str, author: str) -> Paper:
    return Paper(
        id=paper_id,
        title_raw=title,
        abstract_raw=f"The abstract of {title.lower()}.",
        source="test",
        authors=[author],
        published_at=datetime(2024, 1, 10, 9),
        feed=FeedPlacement(day=date(2024, 1, 10), source="test"),
    )


@dataclass
class Stores:
    main_url: str
    replica_url: str
    main: Engine
    replica: Engine


def _new_store(folder: Path, name: str) -> tuple[str, Engine]:
    url = new_database_url(folder, name, migrated=True)
    engine = make_engine(url)
    migrate(engine)
    return url, engine


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[Stores]:
    """Two stores holding different papers: the main one (walrus) and a replica (zebra)."""
    main_url, main = _new_store(tmp_path, "main")
    replica_url, replica = _new_store(tmp_path, "replica")
    with main.begin() as connection:
        upsert_papers(
            connection,
            [
                _paper(SHARED, "Walrus migration routes", "Main Author"),
                _paper(ON_MAIN, "Walrus diving depths", "Main Author"),
            ],
        )
    with replica.begin() as connection:
        upsert_papers(
            connection,
            [
                _paper(SHARED, "Zebra stripe patterns", "Replica Author"),
                _paper(ON_REPLICA, "Zebra herd movements", "Replica Author"),
            ],
        )
    yield Stores(main_url, replica_url, main, replica)
    main.dispose()
    replica.dispose()
    drop_database(main_url)
    drop_database(replica_url)


def _client(database_url: str, read_database_url: str | None = None) -> TestClient:
    settings = Settings(
        database_url=database_url, read_database_url=read_database_url, secret_key="test-secret"
    )
    return TestClient(create_app(settings))


@pytest.fixture
def site(stores: Stores) -> Iterator[TestClient]:
    with _client(stores.main_url, stores.replica_url) as client:
        yield client


def cards(html: str) -> list[str]:
    return re.findall(r'<h2><a href="/papers/([^"]+)">', html)


def sign_up(client: TestClient, username: str) -> None:
    token = form_token(client.get("/signup").text)
    data = {"username": username, "password": PASSWORD, "csrf_token": token}
    assert client.post("/signup", data=data, follow_redirects=False).status_code == 303


def counts(engine: Engine) -> dict[str, int]:
    """What a write could change: rows of the community tables and the change counter."""
    with engine.connect() as connection:
        found = {
            table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (users, votes, comments)
        }
        found["member_votes"] = connection.execute(
            select(func.sum(papers.c.member_votes))
        ).scalar_one()
        found["version"] = current_version(connection)
    return found


def test_the_app_gets_a_second_engine_only_when_a_replica_is_set(stores: Stores) -> None:
    with _client(stores.main_url, stores.replica_url) as client:
        state = client.app.state
        assert state.read_engine is not state.engine
        assert state.read_engine.url.database == stores.replica.url.database
    with _client(stores.main_url) as client:
        assert client.app.state.read_engine is client.app.state.engine


def test_visitors_search_and_read_pages_from_the_replica(site: TestClient) -> None:
    feed = site.get("/?date=2024-01-10")
    assert "Zebra stripe patterns" in feed.text and "Walrus" not in feed.text
    assert set(cards(feed.text)) == {SHARED, ON_REPLICA}
    for period in ("weekly", "monthly"):
        assert set(cards(site.get(f"/?date=2024-01-10&period={period}").text)) == {
            SHARED,
            ON_REPLICA,
        }
    found = site.get("/search", params={"q": "zebra"})
    assert set(cards(found.text)) == {SHARED, ON_REPLICA}
    assert cards(site.get("/search", params={"q": "walrus"}).text) == []
    api = site.get("/api/papers/search", params={"q": "zebra"}).json()
    assert {hit["paper"]["id"] for hit in api["results"]} == {SHARED, ON_REPLICA}
    assert site.get("/api/papers/search", params={"q": "walrus"}).json()["results"] == []
    assert "Zebra stripe patterns" in site.get(f"/papers/{SHARED}").text
    assert site.get(f"/papers/{ON_REPLICA}").status_code == 200
    assert site.get(f"/papers/{ON_MAIN}").status_code == 404
    assert site.get("/authors/Replica Author").status_code == 200
    assert site.get("/authors/Main Author").status_code == 404
    assert site.get(f"/api/papers/{SHARED}").json()["title"] == "Zebra stripe patterns"
    daily = site.get("/api/daily_papers", params={"date": "2024-01-10"}).json()
    assert {entry["paper"]["id"] for entry in daily} == {SHARED, ON_REPLICA}
    atom = site.get("/feed.atom", params={"date": "2024-01-10"}).text
    assert "Zebra herd movements" in atom and "Walrus" not in atom


def test_writes_go_to_the_main_store_and_the_replica_is_unchanged(
    site: TestClient, stores: Stores
) -> None:
    replica_before = counts(stores.replica)
    main_before = counts(stores.main)
    sign_up(site, "ada")
    token = form_token(site.get(f"/papers/{SHARED}").text)
    voted = site.post(
        f"/papers/{SHARED}/vote", headers={"HX-Request": "true", "X-CSRF-Token": token}
    )
    assert voted.status_code == 200 and 'aria-pressed="true"' in voted.text
    said = site.post(
        f"/papers/{SHARED}/comments",
        data={"body": "Stripes all the way down.", "csrf_token": token},
        follow_redirects=False,
    )
    assert said.status_code == 303
    main_after = counts(stores.main)
    assert {key: main_after[key] - main_before[key] for key in ("users", "votes", "comments")} == {
        "users": 1,
        "votes": 1,
        "comments": 1,
    }
    assert main_after["member_votes"] == main_before["member_votes"] + 1
    assert main_after["version"] > main_before["version"]
    assert counts(stores.replica) == replica_before


def test_members_read_their_own_writes_back_from_the_main_store(site: TestClient) -> None:
    sign_up(site, "ada")
    token = form_token(site.get(f"/papers/{SHARED}").text)
    said = site.post(
        f"/papers/{SHARED}/comments",
        data={"body": "Tusks all the way down.", "csrf_token": token},
        follow_redirects=False,
    )
    page = site.get(said.headers["location"])  # where a plain form lands, without htmx
    assert "Tusks all the way down." in page.text and "Walrus migration routes" in page.text
    assert site.get(f"/papers/{ON_MAIN}").status_code == 200
    voted = site.post(
        f"/papers/{SHARED}/vote", headers={"HX-Request": "true", "X-CSRF-Token": token}
    )
    assert 'aria-pressed="true"' in voted.text
    feed = site.get("/?date=2024-01-10").text  # the replica's papers, the member's own votes
    assert set(cards(feed)) == {SHARED, ON_REPLICA}
    assert re.search(
        rf'data-paper="{re.escape(SHARED)}">\s*<input[^>]*>\s*<button[^>]*aria-pressed="true"', feed
    )


def test_without_a_replica_everything_uses_the_one_store(stores: Stores) -> None:
    with _client(stores.main_url) as client:
        assert set(cards(client.get("/?date=2024-01-10").text)) == {SHARED, ON_MAIN}
        assert set(cards(client.get("/search", params={"q": "walrus"}).text)) == {SHARED, ON_MAIN}
        assert "Walrus migration routes" in client.get(f"/papers/{SHARED}").text
        assert client.get(f"/papers/{ON_REPLICA}").status_code == 404
        sign_up(client, "ada")
    assert counts(stores.main)["users"] == 1


def _read_only(stores: Stores, tmp_path: Path) -> str:
    """The replica's URL, made read-only the way a standby is: any write is an error."""
    if ON_POSTGRES:
        database = stores.replica.url.database
        with stores.replica.connect() as connection:
            connection.execute(
                text(f"ALTER DATABASE {database} SET default_transaction_read_only = on")
            )
            connection.commit()
        stores.replica.dispose()  # new connections pick the setting up
        return stores.replica_url
    stores.replica.dispose()
    return f"sqlite:///file:{tmp_path / 'replica.db'}?mode=ro&uri=true"


def _revision(engine: Engine) -> str:
    with engine.connect() as connection:
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()


def _stamp_one_behind(engine: Engine) -> str:
    """Label the store one migration behind the newest, so that migrating it would do work."""
    config = alembic_config(engine)
    behind = ScriptDirectory.from_config(config).get_revision("head").down_revision
    command.stamp(config, behind, purge=True)
    return _revision(engine)


def test_a_read_only_replica_serves_and_is_never_migrated(stores: Stores, tmp_path: Path) -> None:
    revision, before = _stamp_one_behind(stores.replica), counts(stores.replica)
    read_only_url = _read_only(stores, tmp_path)
    replica = make_engine(read_only_url)
    try:
        with pytest.raises(Exception, match=r"(?i)read.only|readonly"):  # what migrating it does
            migrate(replica)
    finally:
        replica.dispose()
    with _client(stores.main_url, read_only_url) as client:
        assert set(cards(client.get("/?date=2024-01-10").text)) == {SHARED, ON_REPLICA}
        assert set(cards(client.get("/search", params={"q": "zebra"}).text)) == {
            SHARED,
            ON_REPLICA,
        }
        assert "Zebra stripe patterns" in client.get(f"/papers/{SHARED}").text
        assert client.get("/healthz").status_code == 200
    replica = make_engine(stores.replica_url)
    try:
        assert _revision(replica) == revision and counts(replica) == before
    finally:
        replica.dispose()
