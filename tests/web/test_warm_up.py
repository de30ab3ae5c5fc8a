"""While the search model loads at start, /readyz says so (200: keywords answer meanwhile),
/healthz stays 200 (alive, on every worker alike), and searches answer from keywords."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from broadsheet.config import Settings
from broadsheet.ingest.runner import import_file
from broadsheet.search.embed import (
    DEFAULT_MODEL,
    SentenceTransformerEmbedder,
    load_embedder,
    register_model,
)
from broadsheet.search.hybrid import WARMING_UP
from broadsheet.search.indexing import index_papers
from broadsheet.web.app import create_app
from helpers import free_port, run_env

TOPICS = Path(__file__).parents[1] / "fixtures" / "daily_papers" / "topics.json"
QUERY = "diffusion image synthesis"


class GatedEmbedder(SentenceTransformerEmbedder):
    """The real model, whose load takes until the test opens the gate (a slow disk, say)."""

    gate = threading.Event()

    def __init__(self, *args, **kwargs) -> None:
        assert self.gate.wait(60), "the test never let the model load"
        super().__init__(*args, **kwargs)


@pytest.fixture
def embedded_store(store: Engine) -> Engine:
    import_file(store, TOPICS)
    index_papers(store, load_embedder())
    return store


@pytest.fixture
def slow_model() -> Iterator[threading.Event]:
    """Loading the default model for queries waits for the returned gate to be set."""
    GatedEmbedder.gate = threading.Event()
    register_model(DEFAULT_MODEL, GatedEmbedder)
    try:
        yield GatedEmbedder.gate
    finally:
        GatedEmbedder.gate.set()
        register_model(DEFAULT_MODEL, None)


def wait_until_ready(client: TestClient, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while client.get("/readyz").json()["search"] != "ready":
        assert time.monotonic() < deadline, "search never became ready"
        time.sleep(0.1)


def test_searches_answer_from_keywords_while_the_model_loads(
    embedded_store: Engine, database_url: str, slow_model: threading.Event, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    settings = Settings(database_url=database_url, secret_key="test", warm_up_search=True)
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}  # alive, whatever it loads
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"status": "ok", "search": "warming up"}

        started = time.monotonic()
        page = client.get("/search", params={"q": QUERY})
        api = client.get("/api/papers/search", params={"q": QUERY}).json()
        assert time.monotonic() - started < 10  # not held until the model is in
        assert page.status_code == 200 and WARMING_UP in page.text
        assert 'id="paper-2401.00003"' in page.text
        assert api["mode"] == "lexical" and api["notice"] == WARMING_UP
        assert api["results"][0]["paper"]["id"] == "2401.00003"

        slow_model.set()
        wait_until_ready(client)
        assert client.get("/readyz").json() == {"status": "ok", "search": "ready"}
        api = client.get("/api/papers/search", params={"q": QUERY}).json()
        assert api["mode"] == "hybrid" and api["notice"] is None
        assert WARMING_UP not in client.get("/search", params={"q": QUERY}).text
    assert any("search ready in" in r.getMessage() for r in caplog.records)


def test_healthz_is_ok_at_once_without_warm_up(store: Engine, database_url: str) -> None:
    client = TestClient(create_app(Settings(database_url=database_url, secret_key="test")))
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok", "search": "ready"}


def test_serve_logs_when_search_is_ready(store: Engine, database_url: str) -> None:
    port = free_port()
    command = [sys.executable, "-m", "broadsheet.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--no-access-log"],
        env=run_env(database_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    search = None
    try:
        deadline = time.monotonic() + 120
        while search != "ready":
            assert process.poll() is None and time.monotonic() < deadline, "serve never got ready"
            with contextlib.suppress(httpx.TransportError):  # not listening yet
                search = httpx.get(f"http://127.0.0.1:{port}/readyz").json()["search"]
            time.sleep(0.1)
    finally:
        process.terminate()
        log = process.communicate(timeout=20)[1]
    assert "search ready in" in log


def test_a_first_corrected_search_waits_for_the_model_it_loads(
    embedded_store: Engine, database_url: str, slow_model: threading.Event
) -> None:
    """Without warm-up (as in ``broadsheet search``) the first search loads the model itself:
    a misspelled one searches its corrected words by meaning too, not "warming up"."""
    threading.Timer(1.0, slow_model.set).start()  # a load that outlasts the spelling check
    client = TestClient(create_app(Settings(database_url=database_url, secret_key="test")))
    api = client.get("/api/papers/search", params={"q": "robust lerning"}).json()
    assert api["corrected_query"] == "robust learning"
    assert api["mode"] == "hybrid" and api["notice"] is None
    assert api["results"][0]["paper"]["id"] == "2401.00007"
