"""A web app over a test store, driven through Starlette's test client."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from broadsheet.config import Settings
from broadsheet.ingest.runner import import_file
from broadsheet.web.app import create_app


def make_client(database_url: str) -> TestClient:
    settings = Settings(database_url=database_url, secret_key="test-secret")
    return TestClient(create_app(settings))


@pytest.fixture
def client(store: Engine, database_url: str) -> Iterator[TestClient]:
    with make_client(database_url) as test_client:
        yield test_client


@pytest.fixture
def daily_client(store: Engine, database_url: str, daily_papers_file) -> Iterator[TestClient]:
    import_file(store, daily_papers_file)
    with make_client(database_url) as test_client:
        yield test_client


def form_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)
