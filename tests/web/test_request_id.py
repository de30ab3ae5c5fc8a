"""Every response carries a request id, error pages show it, and each request logs one line."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from uvicorn.logging import DefaultFormatter

from broadsheet.config import Settings
from broadsheet.logs import ACCESS_LOGGER, JsonFormatter
from broadsheet.web.app import create_app
from broadsheet.web.request_id import REQUEST_ID_HEADER, RequestLog, request_id_from
from helpers import free_port

SECRET = "s3cretValue.XyZ-_"
GENERATED = re.compile(r"[0-9a-f]{32}")


def _raise(request: Request) -> None:
    raise RuntimeError("a bug in a route")


def _log_inside(request: Request) -> dict[str, str]:
    logging.getLogger("broadsheet.test_request_id").warning("logged while serving")
    return {"ok": "yes"}


@pytest.fixture
def app(store, database_url: str) -> FastAPI:
    """The site, with a route that fails as a bug would, and one that logs (a sync route:
    run in a worker thread)."""
    site = create_app(Settings(database_url=database_url, secret_key="test-secret"))
    site.add_api_route("/boom", _raise)
    site.add_api_route("/api/boom", _raise)
    site.add_api_route("/logs-inside", _log_inside)
    return site


@pytest.fixture
def site(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@contextmanager
def logged(formatter: logging.Formatter) -> Iterator[io.StringIO]:
    """What the app logs at INFO and above while inside, as ``formatter`` writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("broadsheet")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def access_lines(stream: io.StringIO) -> list[dict]:
    return [line for line in json_lines(stream) if line["logger"] == ACCESS_LOGGER]


@pytest.mark.parametrize("given", ["abc", "a" * 64, "0f1e.2d-3c_4B", "req-7"])
def test_a_safe_incoming_id_is_kept(given: str) -> None:
    assert request_id_from(given) == given


@pytest.mark.parametrize(
    "given", [None, "", "a" * 65, "two words", "x\ny", "<script>", "ïd", "a/b", "id;drop"]
)
def test_a_missing_or_unsafe_id_is_replaced_by_a_new_one(given: str | None) -> None:
    made = request_id_from(given)
    assert made != given and GENERATED.fullmatch(made)


def test_each_response_gets_an_id_of_its_own(site: TestClient) -> None:
    first, second = (site.get("/healthz").headers[REQUEST_ID_HEADER] for _ in range(2))
    assert GENERATED.fullmatch(first) and GENERATED.fullmatch(second)
    assert first != second


@pytest.mark.parametrize("path", ["/healthz", "/", "/static/app.css", "/api/papers/9999.99999"])
def test_an_incoming_id_is_echoed_on_pages_static_files_and_the_api(
    site: TestClient, path: str
) -> None:
    response = site.get(path, headers={REQUEST_ID_HEADER: "from-the-proxy.42"})
    assert response.headers[REQUEST_ID_HEADER] == "from-the-proxy.42"


def test_an_unsafe_incoming_id_is_replaced(site: TestClient) -> None:
    response = site.get("/healthz", headers={REQUEST_ID_HEADER: "x" * 65})
    assert GENERATED.fullmatch(response.headers[REQUEST_ID_HEADER])
    response = site.get("/healthz", headers={REQUEST_ID_HEADER: "<b>hi</b>"})
    assert GENERATED.fullmatch(response.headers[REQUEST_ID_HEADER])


def shown_id(html: str) -> str:
    match = re.search(r"Request id: <code>([^<]+)</code>", html)
    assert match, "the page shows no request id"
    return match.group(1)


@pytest.mark.parametrize("path", ["/nope", "/papers/9999.99999", "/static/nope.css", "/?page=0"])
def test_error_pages_show_the_id_of_their_response(site: TestClient, path: str) -> None:
    response = site.get(path)
    assert response.status_code in (404, 422)
    assert shown_id(response.text) == response.headers[REQUEST_ID_HEADER]
    given = site.get(path, headers={REQUEST_ID_HEADER: "quote-me-1"})
    assert shown_id(given.text) == "quote-me-1" == given.headers[REQUEST_ID_HEADER]


def test_a_page_that_works_shows_no_id(site: TestClient) -> None:
    assert "Request id:" not in site.get("/").text


def test_a_bug_is_a_500_page_with_the_id_and_every_header(site: TestClient) -> None:
    with logged(JsonFormatter()) as log:
        response = site.get("/boom", headers={REQUEST_ID_HEADER: "bug-report-7"})
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.lstrip().startswith("<!doctype html>")
    assert shown_id(response.text) == "bug-report-7" == response.headers[REQUEST_ID_HEADER]
    assert "a bug in a route" not in response.text  # no traceback for visitors
    assert "Content-Security-Policy" in response.headers  # inside the headers' middleware
    [line] = access_lines(log)
    assert (line["request_id"], line["status"], line["route"]) == ("bug-report-7", 500, "/boom")


def test_a_bug_under_the_api_is_json_with_the_id_in_its_header(site: TestClient) -> None:
    response = site.get("/api/boom")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal Server Error"}
    assert GENERATED.fullmatch(response.headers[REQUEST_ID_HEADER])


def test_when_the_error_page_fails_too_a_plain_500_still_says_the_id() -> None:
    async def broken_page(request: Request, exc: Exception) -> Response:
        raise RuntimeError("the error page's own bug")

    app = Starlette(routes=[Route("/", _raise)])
    app.add_middleware(RequestLog, server_error=broken_page)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/", headers={REQUEST_ID_HEADER: "plain-1"})
    assert response.status_code == 500
    assert response.headers[REQUEST_ID_HEADER] == "plain-1"
    assert "Request id: plain-1" in response.text


def test_the_log_line_names_the_route_template_status_duration_and_id(site: TestClient) -> None:
    with logged(DefaultFormatter("%(levelprefix)s %(message)s", use_colors=False)) as log:
        response = site.get("/papers/9999.99999")
        site.get("/no/such/page")
    request_id = response.headers[REQUEST_ID_HEADER]
    paper, missing = log.getvalue().splitlines()
    assert re.fullmatch(
        r'INFO: +testclient:\d+ - "GET /papers/9999\.99999 HTTP/1\.1" 404 /papers/\{paper_id\} '
        rf"\d+\.\dms request_id={request_id}",
        paper,
    ), paper
    assert '"GET /no/such/page HTTP/1.1" 404 /no/such/page ' in missing  # no route: the path


def test_json_lines_carry_the_requests_fields_and_id(site: TestClient) -> None:
    with logged(JsonFormatter()) as log:
        paper = site.get("/papers/9999.99999")
        static = site.get("/static/app.css", headers={REQUEST_ID_HEADER: "css-1"})
    first, second = access_lines(log)
    assert first["request_id"] == paper.headers[REQUEST_ID_HEADER]
    assert first["route"] == "/papers/{paper_id}" and first["path"] == "/papers/9999.99999"
    assert (first["method"], first["status"], first["level"]) == ("GET", 404, "INFO")
    assert isinstance(first["duration_ms"], float) and first["duration_ms"] >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["ts"])
    assert (second["request_id"], second["route"], second["status"]) == (
        static.headers[REQUEST_ID_HEADER],
        "/static/{path}",
        200,
    )
    assert second["request_id"] == "css-1"


def test_records_logged_while_serving_carry_the_requests_id(site: TestClient) -> None:
    with logged(JsonFormatter()) as log:
        response = site.get("/logs-inside", headers={REQUEST_ID_HEADER: "inside-1"})
    inside = [line for line in json_lines(log) if line["message"] == "logged while serving"]
    assert response.status_code == 200
    assert [line["request_id"] for line in inside] == ["inside-1"]
    assert inside[0]["level"] == "WARNING" and inside[0]["logger"] == "broadsheet.test_request_id"


@pytest.mark.parametrize("as_json", [False, True])
def test_no_token_password_key_or_authorization_in_either_format(
    site: TestClient, as_json: bool
) -> None:
    formatter = JsonFormatter() if as_json else DefaultFormatter("%(message)s", use_colors=False)
    with logged(formatter) as log:
        site.get(f"/password/reset?token={SECRET}")
        site.get(f"/signin?next=%2Fpassword%2Freset%3Ftoken%3D{SECRET}")
        site.get(f"/nope?password={SECRET}&api_key={SECRET}&access_token={SECRET}")
        site.get("/api/me/library", headers={"Authorization": f"Bearer {SECRET}"})
        site.cookies.set("broadsheet_session", SECRET)
        site.get("/")
    text = log.getvalue()
    assert len(text.splitlines()) == 5, text
    assert SECRET not in text
    assert text.count("[redacted]") == 5 * (2 if as_json else 1)  # JSON: message and path
    if as_json:
        assert [line["status"] for line in access_lines(log)] == [400, 200, 404, 401, 200]


# a route with a bug, served by uvicorn with `serve`'s JSON log configuration
BUGGY_SERVER = """
import sys
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route
from broadsheet.logs import server_log_config
from broadsheet.web.request_id import RequestLog

def boom(request):
    raise RuntimeError("a bug in a route")

app = Starlette(routes=[Route("/boom", boom)])
app.add_middleware(RequestLog)
config = server_log_config("json", access_log=True)
uvicorn.run(app, port=int(sys.argv[1]), access_log=False, log_config=config)
"""


def test_the_servers_traceback_of_a_bug_carries_the_request_id() -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", BUGGY_SERVER, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(
                    f"http://127.0.0.1:{port}/boom", headers={REQUEST_ID_HEADER: "tb-1"}
                )
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "no server"
                time.sleep(0.1)
    finally:
        server.terminate()
        log, _ = server.communicate(timeout=20)
    assert answer.status_code == 500 and "Request id: tb-1" in answer.text
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    [traceback] = [line for line in lines if "exc" in line]
    assert traceback["request_id"] == "tb-1" and traceback["level"] == "ERROR"
    assert "RuntimeError: a bug in a route" in traceback["exc"]
    [request] = [line for line in lines if line["logger"] == ACCESS_LOGGER]
    assert (request["request_id"], request["status"], request["route"]) == ("tb-1", 500, "/boom")
