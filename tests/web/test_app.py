"""The application factory: pages over a store, the secret key (beside it or in it), health."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from broadsheet.community.accounts import create_member
from broadsheet.config import Settings
from broadsheet.db.schema import site_secrets
from broadsheet.ingest.runner import import_file
from broadsheet.secret_key import key_in_store
from broadsheet.web.app import create_app
from databases import ON_POSTGRES
from web.test_sessions import PASSWORD, copy_of, sign_in, signed_in


def test_pages_list_stored_papers_cleaned(store, database_url: str, fixtures: Path) -> None:
    import_file(store, fixtures / "daily_papers" / "good.json")
    client = TestClient(create_app(Settings(database_url=database_url)))
    response = client.get("/", params={"date": "2023-12-01"})
    assert response.status_code == 200
    assert "Zero Bubble Pipeline Parallelism" in response.text
    assert 'aria-label="upvotes">19<' in response.text
    latest = client.get("/").text
    assert "Monday, December 4, 2023" in latest and "hep-th/9901001" in latest
    assert "O(n^2)" in latest and "mathcal" not in latest  # cleaned abstract, not raw LaTeX
    assert 'aria-label="upvotes">142<' in latest and 'aria-label="upvotes"><' in latest  # 0: none
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.skipif(ON_POSTGRES, reason="a database server's store keeps its key in itself")
def test_secret_key_is_made_once_and_kept_beside_the_store(store, database_url: str) -> None:
    create_app(Settings(database_url=database_url))
    key_file = Path(database_url.removeprefix("sqlite:///") + ".secret")
    key = key_file.read_text()
    assert len(key) > 40 and (key_file.stat().st_mode & 0o777) == 0o600
    create_app(Settings(database_url=database_url))
    assert key_file.read_text() == key


def test_a_key_kept_in_the_store_is_made_once_whoever_asks_first(store) -> None:
    keys = {key_in_store(store) for _ in range(3)}
    assert len(keys) == 1 and len(keys.pop()) > 40
    with store.connect() as connection:
        assert connection.execute(select(func.count()).select_from(site_secrets)).scalar() == 1


def test_two_servers_on_one_store_accept_each_others_session_cookies(
    store, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_member(store, "ada", PASSWORD)
    servers = []
    for machine in ("one", "two"):  # each server's own home folder, as on two machines
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / machine))
        servers.append(create_app(Settings(database_url=database_url)))
    with TestClient(servers[0]) as browser:
        sign_in(browser)
        assert signed_in(copy_of(servers[1], browser))
