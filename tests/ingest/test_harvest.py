"""The arXiv harvester against a real local HTTP server that serves the fixture pages."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

import broadsheet.ingest.harvest as harvest_module
from broadsheet.config import Settings, get_settings
from broadsheet.db.engine import make_engine, migrate
from broadsheet.db.schema import feed_entries, papers
from broadsheet.ingest.harvest import (
    USER_AGENT,
    HarvestError,
    backoff_seconds,
    harvest_arxiv,
    parse_retry_after,
)
from broadsheet.papers.repository import get_paper

FIXTURES = Path(__file__).parent.parent / "fixtures" / "arxiv_api"
PAGES = {0: "page_1.xml", 2: "page_2.xml", 4: "page_3.xml"}
ALL_IDS = {"math/0309136", "2401.00123", "2401.01234", "2401.02345", "2401.03456"}
SINCE, UNTIL = date(2003, 9, 1), date(2024, 1, 10)


@dataclass
class Stub:
    """What the fake arXiv saw, and how it misbehaves: per ``start``, once or always.

    A behaviour is an HTTP status (``int``) or one of ``"timeout"``, ``"empty"``,
    ``"malformed"`` and ``"error-400"`` (arXiv's error feed with status 400).
    """

    url: str = ""
    requests: list[dict[str, str]] = field(default_factory=list)
    user_agents: list[str | None] = field(default_factory=list)
    once: dict[int, int | str] = field(default_factory=dict)
    always: dict[int, int | str] = field(default_factory=dict)
    retry_after: str | None = "0"
    hang: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/atom+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (the timeout case)

    def do_GET(self) -> None:
        stub = self.server.stub
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        stub.requests.append(query)
        stub.user_agents.append(self.headers.get("User-Agent"))
        start = int(query.get("start", "0"))
        behaviour = stub.once.pop(start, None) or stub.always.get(start)
        if behaviour == "timeout":
            stub.hang.wait(2.0)
            self._reply(200, (FIXTURES / PAGES[start]).read_bytes())
        elif behaviour == "empty":
            self._reply(200, (FIXTURES / "empty_page.xml").read_bytes())
        elif behaviour == "malformed":
            self._reply(200, (FIXTURES / "malformed.xml").read_bytes())
        elif behaviour == "error-400":
            self._reply(400, (FIXTURES / "error.xml").read_bytes())
        elif isinstance(behaviour, int):
            headers = {"Retry-After": stub.retry_after} if stub.retry_after is not None else {}
            self._reply(behaviour, b"<html><body>Service Unavailable</body></html>", headers)
        else:
            self._reply(200, (FIXTURES / PAGES[start]).read_bytes())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    stub: Stub


@pytest.fixture
def stub() -> Iterator[Stub]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.stub = Stub(url=f"http://127.0.0.1:{server.server_address[1]}/api/query")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.stub
    finally:
        server.stub.hang.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 't.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


def _settings(stub: Stub, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "arxiv_api_url": stub.url,
        "arxiv_api_delay": 0.0,
        "arxiv_api_page_size": 2,
        "arxiv_api_retries": 3,
        "arxiv_api_timeout": 0.5,
        **overrides,
    }
    return Settings(**values)


def _harvest(engine: Engine, stub: Stub, sleeps: list[float] | None = None, **overrides: object):
    recorded = sleeps if sleeps is not None else []
    return harvest_arxiv(
        engine,
        category="cs.LG",
        since=SINCE,
        until=UNTIL,
        settings=_settings(stub, **overrides),
        sleep=recorded.append,
    )


def _stored_ids(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(select(papers.c.id)).scalars())


def test_harvest_stores_every_paper_with_its_fields(engine: Engine, stub: Stub):
    pages: list[tuple[int, int]] = []
    summary = harvest_arxiv(
        engine,
        category="cs.LG",
        since=SINCE,
        until=UNTIL,
        settings=_settings(stub),
        on_page=lambda done, total: pages.append((done, total)),
        sleep=lambda _s: None,
    )
    assert (summary.requests, summary.retries, summary.pages, summary.read) == (3, 0, 3, 5)
    assert (summary.added, summary.updated, summary.unchanged) == (5, 0, 0)
    assert (summary.category, summary.since, summary.until) == ("cs.LG", SINCE, UNTIL)
    assert pages == [(2, 5), (4, 5), (5, 5)]
    assert [r["start"] for r in stub.requests] == ["0", "2", "4"]
    for params in stub.requests:
        assert params["max_results"] == "2"
        assert params["search_query"] == (
            "cat:cs.LG AND submittedDate:[200309010000 TO 202401102359]"
        )
        assert (params["sortBy"], params["sortOrder"]) == ("submittedDate", "ascending")
    assert stub.user_agents == [USER_AGENT] * 3
    assert _stored_ids(engine) == ALL_IDS

    with engine.connect() as connection:
        row = get_paper(connection, "2401.01234")
        old = get_paper(connection, "math/0309136")
        feed = connection.execute(
            select(feed_entries.c.paper_id, feed_entries.c.day, feed_entries.c.source)
        ).all()
    assert row is not None and old is not None
    assert row["version"] == 2
    assert row["title"] == (
        "Linear-Time Attention via Sparse Kernel Sketches: Beyond O(n^2) Transformers"
    )
    assert row["title_raw"].startswith("Linear-Time Attention via Sparse Kernel Sketches: Beyond\n")
    assert "$\\mathcal{O}(n)$" in row["abstract_raw"]
    assert row["authors"] == ["Maria García", "Kenji Sato", "Priya Raman"]
    assert row["primary_category"] == "cs.LG"
    assert row["categories"] == "cs.LG cs.CL stat.ML"
    assert row["published_at"] == datetime(2024, 1, 2, 9, 15)
    assert row["updated_at"] == datetime(2024, 1, 4, 18, 22, 10)
    assert row["doi"] == "10.1145/3580305.3599999"
    assert row["journal_ref"] == "Proc. KDD 2024, pp. 101-112"
    assert row["comment"] == "Accepted at KDD 2024. 12 pages,\n  4 figures"
    assert row["links"] == {"pdf": "http://arxiv.org/pdf/2401.01234v2"}
    assert row["source"] == "arxiv_api"
    assert (old["version"], old["primary_category"]) == (2, "math.GT")
    assert old["categories"] == "math.GT cs.LG"
    assert old["authors"] == ["Jan Müller", "Ana Lopes"]
    assert sorted(feed) == sorted(
        [
            ("math/0309136", date(2003, 9, 8), "harvest:cs.LG"),
            ("2401.00123", date(2024, 1, 1), "harvest:cs.LG"),
            ("2401.01234", date(2024, 1, 2), "harvest:cs.LG"),
            ("2401.02345", date(2024, 1, 3), "harvest:cs.LG"),
            ("2401.03456", date(2024, 1, 5), "harvest:cs.LG"),
        ]
    )


def test_rerun_is_idempotent(engine: Engine, stub: Stub):
    _harvest(engine, stub)
    again = _harvest(engine, stub)
    assert (again.read, again.added, again.updated, again.unchanged) == (5, 0, 0, 5)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(papers)).scalar_one() == 5
        assert connection.execute(select(func.count()).select_from(feed_entries)).scalar_one() == 5


def test_delay_between_requests_and_retry_after_honoured(engine: Engine, stub: Stub):
    stub.once[0] = 503  # with Retry-After: 0
    sleeps: list[float] = []
    summary = _harvest(engine, stub, sleeps, arxiv_api_delay=3.0)
    assert (summary.requests, summary.retries, summary.added) == (4, 1, 5)
    assert [r["start"] for r in stub.requests] == ["0", "0", "2", "4"]
    # one wait before each request but the first, spacing them 3 s apart (start to start)
    assert len(sleeps) == 3
    assert all(2.5 < s <= 3.0 for s in sleeps), sleeps
    assert sum(sleeps) >= 3 * 2.5


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_transient_status_is_retried(engine: Engine, stub: Stub, status: int):
    stub.once[2] = status
    summary = _harvest(engine, stub)
    assert (summary.requests, summary.retries, summary.read, summary.added) == (4, 1, 5, 5)
    assert _stored_ids(engine) == ALL_IDS


def test_exponential_backoff_then_give_up(engine: Engine, stub: Stub):
    stub.always[0] = 503
    stub.retry_after = None
    sleeps: list[float] = []
    with pytest.raises(HarvestError) as caught:
        _harvest(engine, stub, sleeps)
    message = str(caught.value)
    assert stub.url in message and "start=0" in message and "HTTP 503" in message
    assert "gave up after 3 retries" in message
    assert sleeps == [2.0, 4.0, 8.0]
    assert len(stub.requests) == 4
    assert _stored_ids(engine) == set()


def test_timeout_is_retried(engine: Engine, stub: Stub):
    stub.once[2] = "timeout"
    sleeps: list[float] = []
    summary = _harvest(engine, stub, sleeps, arxiv_api_timeout=0.3)
    assert (summary.requests, summary.retries, summary.added) == (4, 1, 5)
    assert sleeps == [2.0]
    assert _stored_ids(engine) == ALL_IDS


def test_connection_error_is_retried_then_reported(engine: Engine):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = Stub(url=f"http://127.0.0.1:{port}/api/query")
    sleeps: list[float] = []
    with pytest.raises(HarvestError, match=r"gave up after 1 retries; last: ConnectError"):
        _harvest(engine, closed, sleeps, arxiv_api_retries=1)
    assert sleeps == [2.0]


def test_spurious_empty_page_is_retried(engine: Engine, stub: Stub):
    stub.once[2] = "empty"  # no entries and totalResults 0, though page 1 said 5
    summary = _harvest(engine, stub)
    assert (summary.requests, summary.retries, summary.pages, summary.added) == (4, 1, 3, 5)
    assert [r["start"] for r in stub.requests] == ["0", "2", "2", "4"]
    assert _stored_ids(engine) == ALL_IDS


def test_persistent_empty_page_gives_up(engine: Engine, stub: Stub):
    stub.always[2] = "empty"
    with pytest.raises(HarvestError, match="empty pages at start=2 although it reported 5"):
        _harvest(engine, stub)
    assert len(stub.requests) == 1 + 4
    assert _stored_ids(engine) == {"math/0309136", "2401.00123"}


def test_permanent_400_raises_and_stores_nothing_of_that_page(engine: Engine, stub: Stub):
    stub.always[2] = "error-400"
    with pytest.raises(HarvestError) as caught:
        _harvest(engine, stub)
    message = str(caught.value)
    assert stub.url in message and "start=2" in message
    assert "HTTP 400 (max_results must be non-negative)" in message
    assert len(stub.requests) == 2  # not retried
    assert _stored_ids(engine) == {"math/0309136", "2401.00123"}


def test_malformed_page_raises_and_stores_nothing_of_it(engine: Engine, stub: Stub):
    stub.always[2] = "malformed"
    with pytest.raises(HarvestError, match=r"start=2.*: entry 2: field 'title': missing"):
        _harvest(engine, stub)
    assert _stored_ids(engine) == {"math/0309136", "2401.00123"}  # not 2401.01234 of page 2


def test_each_page_is_one_transaction(engine: Engine, stub: Stub, monkeypatch):
    real = harvest_module.upsert_papers
    calls: list[int] = []

    def failing_on_second_page(connection, batch):
        counts = real(connection, batch)
        calls.append(len(batch))
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return counts

    monkeypatch.setattr(harvest_module, "upsert_papers", failing_on_second_page)
    with pytest.raises(RuntimeError, match="disk full"):
        _harvest(engine, stub)
    assert _stored_ids(engine) == {"math/0309136", "2401.00123"}
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(feed_entries)).scalar_one() == 2


def test_backoff_and_retry_after():
    assert [backoff_seconds(a) for a in range(7)] == [2, 4, 8, 16, 32, 60, 60]
    assert backoff_seconds(3, retry_after=5) == 5
    assert backoff_seconds(0, retry_after=-1) == 0
    assert parse_retry_after("7") == 7
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") < 0


def test_since_after_until_is_refused(engine: Engine, stub: Stub):
    with pytest.raises(HarvestError, match="after until"):
        harvest_arxiv(engine, category="cs.LG", since=UNTIL, until=SINCE, settings=_settings(stub))
    assert stub.requests == []


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_cli_harvest(tmp_path: Path, stub: Stub, monkeypatch, fresh_settings: None):
    from broadsheet.cli import app

    db = tmp_path / "cli-harvest.db"
    monkeypatch.setenv("BROADSHEET_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("BROADSHEET_ARXIV_API_URL", stub.url)
    monkeypatch.setenv("BROADSHEET_ARXIV_API_DELAY", "0")
    monkeypatch.setenv("BROADSHEET_ARXIV_API_PAGE_SIZE", "2")
    result = CliRunner().invoke(
        app,
        [
            "harvest",
            "arxiv",
            "--category",
            "cs.LG",
            "--since",
            "2003-09-01",
            "--until",
            "2024-01-10",
        ],
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"Harvested cs\.LG\s+since 2003-09-01", result.output), result.output
    for name, value in [
        ("requests", 3),
        ("retries", 0),
        ("read", 5),
        ("added", 5),
        ("updated", 0),
        ("unchanged", 0),
    ]:
        assert re.search(rf"{name}\W+{value}\b", result.output), (name, result.output)
    engine = make_engine(f"sqlite:///{db}")
    try:
        assert _stored_ids(engine) == ALL_IDS
    finally:
        engine.dispose()


def test_cli_harvest_error_exits_1(tmp_path: Path, stub: Stub, monkeypatch, fresh_settings: None):
    from broadsheet.cli import app

    stub.always[0] = "error-400"
    monkeypatch.setenv("BROADSHEET_DATABASE_URL", f"sqlite:///{tmp_path / 'cli-error.db'}")
    monkeypatch.setenv("BROADSHEET_ARXIV_API_URL", stub.url)
    monkeypatch.setenv("BROADSHEET_ARXIV_API_DELAY", "0")
    result = CliRunner().invoke(
        app,
        ["harvest", "arxiv", "--category", "cs.LG", "--since", "2024-01-01"],
    )
    assert result.exit_code == 1
    assert "max_results must be non-negative" in result.output


def test_injected_client_is_used_and_left_open(engine: Engine, stub: Stub):
    with httpx.Client(timeout=2.0, headers={"User-Agent": "test-agent"}) as client:
        summary = harvest_arxiv(
            engine,
            category="cs.LG",
            since=SINCE,
            until=UNTIL,
            settings=_settings(stub),
            client=client,
            sleep=lambda _s: None,
        )
        assert not client.is_closed
    assert summary.added == 5
    assert stub.user_agents == ["test-agent"] * 3
