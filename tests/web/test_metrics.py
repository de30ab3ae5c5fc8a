"""Prometheus metrics at /metrics: off by default, hidden from everyone not allowed, series with
bounded labels, added up across `serve` workers, and scraped by a real Prometheus server."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, insert

from broadsheet.community.accounts import create_member
from broadsheet.config import Settings
from broadsheet.db.engine import make_engine, migrate
from broadsheet.db.schema import digest_outbox, job_runs, subscribers
from broadsheet.ingest.runner import import_file
from broadsheet.metrics import MULTIPROCESS_DIR, StoreCollector
from broadsheet.search.embed import load_embedder
from broadsheet.search.indexing import index_papers
from broadsheet.web.app import create_app
from databases import drop_database, new_database_url
from helpers import free_port, live_server, run_env

TOPICS = Path(__file__).parents[1] / "fixtures" / "daily_papers" / "topics.json"
LOCAL = ("127.0.0.1", 50000)
TOKEN = "scrape-token-for-tests"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def total(found: Samples, name: str, **labels: str) -> float:
    """The sum of ``name`` over the series whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in found.items() if n == name and wanted <= have)


def label_values(found: Samples, name: str, label: str) -> set[str]:
    return {dict(have)[label] for (n, have) in found if n == name and label in dict(have)}


def as_unknown_page(answer: httpx.Response, path: str) -> str:
    """The page, with ``path`` and the request's id as on any unknown address."""
    return re.sub(r"\b[0-9a-f]{32}\b", "<id>", answer.text.replace(path, "/unknown"))


def metrics_client(database_url: str, address=LOCAL, **settings) -> TestClient:
    config = Settings(database_url=database_url, secret_key="test-secret", **settings)
    return TestClient(create_app(config), client=address)


def scrape(client: TestClient, **headers: str) -> Samples:
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    return samples(answer.text)


def test_metrics_are_off_by_default(store: Engine, database_url: str) -> None:
    with metrics_client(database_url) as client:
        answer = client.get("/metrics")
        unknown = client.get("/no-such-page")
    assert answer.status_code == 404
    assert as_unknown_page(answer, "/metrics") == as_unknown_page(unknown, "/no-such-page")


@pytest.mark.parametrize(
    ("address", "settings", "headers"),
    [
        (("203.0.113.9", 4000), {}, {}),  # not loopback, the default
        (("testclient", 4000), {}, {}),  # not an address at all
        (("127.0.0.1", 4000), {"metrics_allow": "10.0.0.0/8"}, {}),
        (("127.0.0.1", 4000), {"metrics_token": TOKEN}, {}),
        (("127.0.0.1", 4000), {"metrics_token": TOKEN}, {"Authorization": "Bearer wrong"}),
        (("127.0.0.1", 4000), {"metrics_token": TOKEN}, {"Authorization": f"Basic {TOKEN}"}),
        (("203.0.113.9", 4000), {"metrics_token": TOKEN}, {"Authorization": f"Bearer {TOKEN}"}),
        (("203.0.113.9", 4000), {"metrics_allow": "*", "metrics_token": TOKEN}, {}),
    ],
)
def test_a_refused_scrape_sees_the_sites_404(
    store: Engine, database_url: str, address, settings, headers
) -> None:
    with metrics_client(database_url, address, metrics_enabled=True, **settings) as client:
        unknown = client.get("/no-such-page", headers=headers)
        for method in ("GET", "HEAD", "POST"):
            answer = client.request(method, "/metrics", headers=headers)
            assert answer.status_code == 404, method
        answer = client.get("/metrics", headers=headers)
        assert as_unknown_page(answer, "/metrics") == as_unknown_page(unknown, "/no-such-page")
        # no redirect to the real address either
        assert client.get("/metrics/", headers=headers, follow_redirects=False).status_code == 404


@pytest.mark.parametrize(
    ("address", "settings", "headers"),
    [
        (("127.0.0.1", 4000), {}, {}),
        (("::1", 4000), {}, {}),
        (("10.1.2.3", 4000), {"metrics_allow": "10.0.0.0/8"}, {}),
        (("::ffff:10.1.2.3", 4000), {"metrics_allow": "10.0.0.0/8"}, {}),
        (("127.0.0.1", 4000), {"metrics_token": TOKEN}, {"Authorization": f"Bearer {TOKEN}"}),
        (("203.0.113.9", 4000), {"metrics_allow": "*", "metrics_token": TOKEN},
         {"Authorization": f"bearer {TOKEN}"}),
    ],
)  # fmt: skip
def test_an_allowed_scrape_gets_the_exposition(
    store: Engine, database_url: str, address, settings, headers
) -> None:
    with metrics_client(database_url, address, metrics_enabled=True, **settings) as client:
        answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert value(samples(answer.text), "broadsheet_store_up") == 1


def _queue_digests(store: Engine) -> None:
    """Three subscribers' digests: two waiting, one failed for good."""
    now = datetime(2026, 12, 1, 7)
    with store.begin() as connection:
        for number, status in enumerate(("pending", "pending", "failed")):
            subscriber = connection.execute(
                insert(subscribers).values(
                    email=f"reader{number}@example.org", status="confirmed", created_at=now
                )
            ).inserted_primary_key[0]
            connection.execute(
                insert(digest_outbox).values(
                    subscriber_id=subscriber, period_key="2026-12-01", status=status,
                    next_attempt_at=now, created_at=now,
                )
            )  # fmt: skip


def _record_jobs(store: Engine) -> None:
    run = {"started_at": datetime(2026, 12, 1, 5), "counts": {}, "worker": "test:1"}
    with store.begin() as connection:
        connection.execute(
            insert(job_runs),
            [
                {**run, "job": "index", "finished_at": datetime(2026, 12, 1, 6), "outcome": "ok"},
                {**run, "job": "index", "finished_at": datetime(2026, 12, 1, 8), "outcome": "ok"},
                {**run, "job": "index", "finished_at": datetime(2026, 12, 1, 9),
                 "outcome": "failed"},
                {**run, "job": "harvest:cs.CL", "finished_at": None, "outcome": "running"},
            ],
        )  # fmt: skip


def test_the_series_after_requests_and_a_search(store: Engine, database_url: str) -> None:
    import_file(store, TOPICS)
    index_papers(store, load_embedder())
    create_member(store, "ada", "long enough password")
    _queue_digests(store)
    _record_jobs(store)
    with metrics_client(database_url, metrics_enabled=True) as client:
        before = scrape(client)
        for _ in range(3):
            assert client.get("/healthz").status_code == 200
        assert client.get("/papers/2401.00004").status_code == 200
        assert client.get("/papers/9999.99999").status_code == 404
        assert client.get("/").status_code == 200
        assert client.get("/").status_code == 200  # from the page cache
        # words no other test searches for: a query embedded before comes from the cache,
        # which is not timed
        found = client.get("/api/papers/search", params={"q": "folding of proteins, metered"})
        assert found.json()["mode"] == "hybrid"
        after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    requests = "broadsheet_http_requests_total"
    assert grew(requests, method="GET", route="/healthz", status="2xx") == 3
    assert grew(requests, route="/papers/{paper_id}", status="2xx") == 1
    assert grew(requests, route="/papers/{paper_id}", status="4xx") == 1
    assert grew(requests, route="/api/papers/search", status="2xx") == 1
    latency = "broadsheet_http_request_duration_seconds"
    assert grew(f"{latency}_count", route="/healthz") == 3
    assert 0 < grew(f"{latency}_sum", route="/api/papers/search") < 60
    assert grew(f"{latency}_bucket", route="/healthz", le="+Inf") == 3
    for stage in ("keyword", "embed", "vector", "fuse", "rerank"):
        assert grew("broadsheet_search_stage_seconds_count", stage=stage) >= 1, stage
        assert 0 <= grew("broadsheet_search_stage_seconds_sum", stage=stage) < 30, stage
    lookups = "broadsheet_page_cache_lookups_total"
    assert grew(lookups, cache="pages", result="miss") >= 1
    assert grew(lookups, cache="pages", result="hit") >= 1
    assert value(after, "broadsheet_papers") == 12
    assert value(after, "broadsheet_papers_with_vectors") == 12
    assert value(after, "broadsheet_index_coverage_ratio") == 1.0
    assert value(after, "broadsheet_members") == 1
    assert value(after, "broadsheet_digest_outbox_pending") == 2
    assert value(after, "broadsheet_digest_outbox_failed") == 1
    last = "broadsheet_job_last_success_timestamp_seconds"
    assert value(after, last, job="index") == datetime(2026, 12, 1, 8, tzinfo=UTC).timestamp()
    assert label_values(after, last, "job") == {"index"}  # never succeeded: no series


def test_a_flood_of_odd_requests_adds_no_label_values(store: Engine, database_url: str) -> None:
    with metrics_client(database_url, metrics_enabled=True) as client:
        client.get("/no-such-page")
        client.get("/papers/1234.00001")
        before = scrape(client)
        for _ in range(100):
            odd = uuid.uuid4().hex
            assert client.get(f"/{odd}/{odd}").status_code == 404
            assert client.get(f"/papers/{odd}").status_code in (404, 422)
            client.request(odd[:8].upper(), f"/{odd}")
        after = scrape(client)
    for label in ("route", "method", "status"):
        assert label_values(after, "broadsheet_http_requests_total", label) <= (
            label_values(before, "broadsheet_http_requests_total", label)
            | {"OTHER", "/metrics", "2xx", "4xx", "GET"}
        ), label
    assert total(after, "broadsheet_http_requests_total", route="<unmatched>") >= 200


def test_the_store_is_read_at_most_once_per_ttl(store: Engine) -> None:
    cached = StoreCollector(store, "all-MiniLM-L6-v2", ttl=3600)
    fresh = StoreCollector(store, "all-MiniLM-L6-v2", ttl=0)

    def members(collector: StoreCollector) -> float:
        [family] = [f for f in collector.collect() if f.name == "broadsheet_members"]
        return family.samples[0].value

    assert members(cached) == members(fresh) == 0
    create_member(store, "ada", "long enough password")
    assert members(cached) == 0
    assert members(fresh) == 1


def test_an_unreadable_store_is_a_gauge_not_a_failed_scrape(tmp_path: Path) -> None:
    missing = make_engine(f"sqlite:///{tmp_path / 'gone' / 'store.db'}")
    families = list(StoreCollector(missing, "all-MiniLM-L6-v2").collect())
    assert [(f.name, f.samples[0].value) for f in families] == [("broadsheet_store_up", 0)]
    missing.dispose()


def test_several_processes_share_a_fresh_folder_removed_at_exit() -> None:
    env = {k: v for k, v in run_env("sqlite://").items() if k != MULTIPROCESS_DIR}
    script = (
        "import os; from broadsheet.metrics import share_between_processes as share; "
        f"folder = share(); print(folder, os.listdir(folder), os.environ['{MULTIPROCESS_DIR}'])"
    )
    said = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert said.returncode == 0, said.stderr
    folder, listed, named = said.stdout.split()
    assert listed == "[]" and named == folder
    assert not Path(folder).exists()


@contextlib.contextmanager
def _serve(database_url: str, workers: int) -> Iterator[tuple[str, subprocess.Popen]]:
    port = free_port()
    env = {**run_env(database_url), "BROADSHEET_METRICS_ENABLED": "1"}
    env.pop(MULTIPROCESS_DIR, None)
    command = [sys.executable, "-m", "broadsheet.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--workers", str(workers), "--no-access-log", "--no-warm-up"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.terminate()
        process.communicate(timeout=60)


def _workers_folder(serve: subprocess.Popen, workers: int) -> Path:
    """The multiprocess folder `serve` gave its workers (read from their environment)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        children = psutil.Process(serve.pid).children(recursive=True)
        folders = set()
        for child in children:
            with contextlib.suppress(psutil.Error):
                folders.add(child.environ().get(MULTIPROCESS_DIR))
        if len(children) >= workers and len(folders) == 1 and None not in folders:
            return Path(folders.pop())
        time.sleep(0.2)
    raise AssertionError("serve's workers never had one metrics folder")


def _counting(folder: Path) -> set[int]:
    """The processes that have counted a request (each keeps its counters in its own file)."""
    return {int(path.stem.rsplit("_", 1)[1]) for path in folder.glob("counter_*.db")}


def test_two_serve_workers_count_as_one_site(database_url: str, store: Engine) -> None:
    """Every scrape, whichever worker answers it, has the requests both answered, a killed
    worker's included. (The kernel may hand one worker every connection: the one that has
    answered is then killed, so that the other answers the rest.)"""
    with _serve(database_url, workers=2) as (base, serve):
        folder = _workers_folder(serve, 2)
        deadline = time.monotonic() + 90
        while True:  # until it answers
            assert serve.poll() is None, serve.stderr.read()
            assert time.monotonic() < deadline, "serve never answered"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            time.sleep(0.2)
        answered = 1

        def health(_: int) -> int:
            return httpx.get(f"{base}/healthz").status_code  # a new connection each time

        with ThreadPoolExecutor(8) as pool:
            deadline = time.monotonic() + 60
            while len(_counting(folder)) < 2:
                assert time.monotonic() < deadline, "the second worker never answered"
                assert list(pool.map(health, range(16))) == [200] * 16
                answered += 16
                if len(counted := _counting(folder)) == 1:
                    time.sleep(0.5)  # its last answer counted
                    psutil.Process(counted.pop()).kill()
        seen: list[float] = []
        deadline = time.monotonic() + 20
        while len(seen) < 6:  # several scrapes, answered by either worker: each has the sum
            assert time.monotonic() < deadline, f"scrapes saw {seen}, not {answered}"
            found = samples(httpx.get(f"{base}/metrics").text)
            count = total(found, "broadsheet_http_requests_total", route="/healthz")
            timed = total(found, "broadsheet_http_request_duration_seconds_count", route="/healthz")
            assert count == timed
            seen = [*seen, count] if count == answered else []  # the last answers may still be
            # counting when a scrape arrives; once they are counted, every scrape has them
        assert value(found, "broadsheet_store_up") == 1
    assert serve.returncode == 0
    assert not folder.exists()  # made for this run, gone with it


# ---- a real Prometheus server scrapes a running site ----

SCRAPE_CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: broadsheet
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials: {token}
    static_configs:
      - targets: ["{target}"]
  - job_name: without-token
    metrics_path: /metrics
    static_configs:
      - targets: ["{target}"]
"""


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A site with metrics on and a search done, and a Prometheus server scraping it every
    second (once per module: it takes a few seconds to start); yields the server's address."""
    if not Path(PROMETHEUS).exists():
        pytest.skip("no prometheus binary (Debian's `prometheus` package; CI installs it)")
    folder = tmp_path_factory.mktemp("prometheus")
    url = new_database_url(folder, migrated=True)
    engine = make_engine(url)
    migrate(engine)
    import_file(engine, TOPICS)
    settings = Settings(
        database_url=url, secret_key="test-secret", metrics_enabled=True, metrics_token=TOKEN
    )
    try:
        with live_server(create_app(settings)) as site:
            for path in ("/healthz", "/search?q=protein+folding", "/papers/9999.99999"):
                httpx.get(f"{site}{path}", timeout=60)
            target = site.removeprefix("http://")
            config = folder / "prometheus.yml"
            config.write_text(SCRAPE_CONFIG.format(token=TOKEN, target=target), encoding="utf-8")
            address = f"127.0.0.1:{free_port()}"
            server = subprocess.Popen(
                [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
                 f"--web.listen-address={address}", "--log.level=warn"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            try:
                yield f"http://{address}"
            finally:
                server.terminate()
                server.communicate(timeout=30)
    finally:
        engine.dispose()
        drop_database(url)


def _query(prometheus: str, query: str, timeout: float = 30) -> list[dict]:
    """The results of an instant query, once it has some (Prometheus scrapes every second)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.TransportError):
            answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": query})
            if answer.status_code == 200 and (results := answer.json()["data"]["result"]):
                return results
        assert time.monotonic() < deadline, f"Prometheus has no {query} after {timeout} s"
        time.sleep(0.5)


def test_prometheus_scrapes_the_series(prometheus: str) -> None:
    requests = _query(prometheus, 'broadsheet_http_requests_total{job="broadsheet"}')
    routes = {result["metric"]["route"] for result in requests}
    assert {"/healthz", "/search", "/papers/{paper_id}"} <= routes
    assert all(result["metric"]["status"].endswith("xx") for result in requests)
    [keyword] = _query(prometheus, 'broadsheet_search_stage_seconds_count{stage="keyword"}')
    assert float(keyword["value"][1]) >= 1
    [papers] = _query(prometheus, "broadsheet_papers")
    assert float(papers["value"][1]) == 12
    latency = _query(prometheus, "broadsheet_http_request_duration_seconds_bucket")
    assert {result["metric"]["le"] for result in latency} >= {"0.005", "+Inf"}


def test_prometheus_sees_the_site_up_with_the_token_only(prometheus: str) -> None:
    deadline = time.monotonic() + 30
    while True:  # until each job has been scraped, the first one successfully
        up = {r["metric"]["job"]: float(r["value"][1]) for r in _query(prometheus, "up")}
        if up.get("broadsheet") == 1 and "without-token" in up:
            break
        assert time.monotonic() < deadline, up
        time.sleep(0.5)
    assert up == {"broadsheet": 1.0, "without-token": 0.0}
