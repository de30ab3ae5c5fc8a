"""A local stand-in for the arXiv API's ``id_list`` lookups and harvests, serving the fixture
entries."""

from __future__ import annotations

import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from broadsheet.papers.ids import parse_arxiv_id

FIXTURES = Path(__file__).parent / "fixtures" / "arxiv_api"
ATOM = "http://www.w3.org/2005/Atom"
OPENSEARCH = "http://a9.com/-/spec/opensearch/1.1/"


def fixture_entries() -> dict[str, bytes]:
    """Every ``<entry>`` in the fixture pages, serialised, by arXiv id without version."""
    entries = {}
    for page in sorted(FIXTURES.glob("page_*.xml")):
        for entry in ET.parse(page).getroot().findall(f"{{{ATOM}}}entry"):
            paper_id = parse_arxiv_id(entry.findtext(f"{{{ATOM}}}id", "")).id
            entries[paper_id] = ET.tostring(entry)
    return entries


def feed(entries: list[bytes]) -> bytes:
    count = len(entries)
    return (
        (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="{ATOM}">'
            f"<title>ArXiv Query</title><id>http://arxiv.org/api/fake</id>"
            f"<updated>2024-01-10T00:00:00-05:00</updated>"
            f'<opensearch:totalResults xmlns:opensearch="{OPENSEARCH}">{count}'
            "</opensearch:totalResults>"
            f'<opensearch:startIndex xmlns:opensearch="{OPENSEARCH}">0</opensearch:startIndex>'
            f'<opensearch:itemsPerPage xmlns:opensearch="{OPENSEARCH}">{count}'
            "</opensearch:itemsPerPage>"
        ).encode()
        + b"".join(entries)
        + b"</feed>"
    )


@dataclass
class FakeArxiv:
    url: str = ""
    entries: dict[str, bytes] = field(default_factory=fixture_entries)
    requests: list[dict[str, str]] = field(default_factory=list)
    fail_with: int | None = None  # answer every request with this status
    delay: float = 0.0  # seconds to wait before answering, as a slow arXiv does


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        fake = self.server.fake
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        fake.requests.append(query)
        time.sleep(fake.delay)
        if fake.fail_with is not None:
            status, body = fake.fail_with, b"unavailable"
        elif "search_query" in query:  # a harvest: every entry, on one page
            found = list(fake.entries.values()) if query.get("start", "0") == "0" else []
            status, body = 200, feed(found)
        else:
            ids = [parse_arxiv_id(i).id for i in query.get("id_list", "").split(",") if i]
            status, body = 200, feed([fake.entries[i] for i in ids if i in fake.entries])
        self.send_response(status)
        self.send_header("Content-Type", "application/atom+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeArxiv


@contextmanager
def fake_arxiv() -> Iterator[FakeArxiv]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = FakeArxiv(url=f"http://127.0.0.1:{server.server_address[1]}/api/query")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def silent_arxiv() -> Iterator[str]:
    """An arXiv API URL whose server accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/api/query"
    finally:
        listener.close()


def closed_port_url() -> str:
    """An arXiv API URL on a local port nothing listens on: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/query"
