"""The arXiv API (``export.arxiv.org/api/query``): query parameters and its Atom responses.

A response is an Atom feed with OpenSearch paging counts and arXiv extension elements; see
https://info.arxiv.org/help/api/user-manual.html. Errors come back as a feed whose one entry
has an id starting ``http://arxiv.org/api/errors#`` and the message in its summary.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

import httpx

from broadsheet.papers.dates import parse_datetime
from broadsheet.papers.ids import InvalidArxivId, parse_arxiv_id
from broadsheet.papers.record import FeedPlacement, Paper

SOURCE = "arxiv_api"
NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "opensearch": "http://a9.com/-/spec/opensearch/1.1/",
    "arxiv": "http://arxiv.org/schemas/atom",
}
ERROR_ID_PREFIX = "http://arxiv.org/api/errors"


class ArxivFeedError(ValueError):
    """An arXiv API response that cannot be used."""


class ArxivApiError(ArxivFeedError):
    """arXiv answered with its error feed; ``message`` is the error's summary text."""

    def __init__(self, message: str, url: str = ""):
        self.message, self.url = message, url
        super().__init__(f"{url + ': ' if url else ''}arXiv API error: {message}")


class MalformedFeed(ArxivFeedError):
    """A feed or entry lacking a field we need, located by page URL, entry number and field."""

    def __init__(self, url: str, entry: int | None, field: str, message: str):
        self.url, self.entry, self.field, self.message = url, entry, field, message
        where = f"{url or 'arXiv feed'}" + (f": entry {entry}" if entry is not None else "")
        super().__init__(f"{where}: field {field!r}: {message}")


@dataclass(slots=True)
class FeedPage:
    """One page of results: its papers and the feed's OpenSearch counts."""

    papers: list[Paper] = field(default_factory=list)
    total_results: int = 0
    start_index: int = 0
    items_per_page: int = 0


def search_query(category: str, since: date, until: date) -> str:
    """The ``search_query`` for papers in ``category`` submitted from ``since`` to ``until``."""
    return f"cat:{category} AND submittedDate:[{since:%Y%m%d}0000 TO {until:%Y%m%d}2359]"


def query_params(
    category: str, since: date, until: date, *, start: int, max_results: int
) -> dict[str, str]:
    """Query parameters for one page, oldest submissions first."""
    return {
        "search_query": search_query(category, since, until),
        "sortBy": "submittedDate",
        "sortOrder": "ascending",
        "start": str(start),
        "max_results": str(max_results),
    }


def _text(element: ET.Element, path: str) -> str | None:
    """Text of the child at ``path`` with outer whitespace removed; None when absent or blank."""
    child = element.find(path, NS)
    if child is None or child.text is None:
        return None
    return child.text.strip() or None


def _count(root: ET.Element, name: str, url: str) -> int:
    value = _text(root, f"opensearch:{name}")
    if value is None:
        raise MalformedFeed(url, None, f"opensearch:{name}", "missing")
    try:
        return int(value)
    except ValueError as exc:
        raise MalformedFeed(url, None, f"opensearch:{name}", f"{value!r} is not a number") from exc


def _categories(entry: ET.Element) -> list[str]:
    primary = entry.find("arxiv:primary_category", NS)
    terms = [primary.get("term")] if primary is not None else []
    terms += [c.get("term") for c in entry.findall("atom:category", NS)]
    return list(dict.fromkeys(t.strip() for t in terms if t and t.strip()))


def _links(entry: ET.Element) -> dict[str, str]:
    links: dict[str, str] = {}
    for link in entry.findall("atom:link", NS):
        href = link.get("href")
        if href and link.get("title") == "pdf":
            links["pdf"] = href
    return links


def _date(entry: ET.Element, name: str, url: str, number: int) -> datetime | None:
    value = _text(entry, f"atom:{name}")
    if value is None:
        return None
    try:
        return parse_datetime(value)
    except ValueError as exc:
        raise MalformedFeed(url, number, name, str(exc)) from exc


def parse_entry(entry: ET.Element, *, category: str, url: str = "", number: int = 1) -> Paper:
    """One ``<entry>`` as a Paper on the ``harvest:{category}`` feed of its submission day."""
    raw_id = _text(entry, "atom:id")
    if raw_id is None:
        raise MalformedFeed(url, number, "id", "missing")
    try:
        arxiv_id = parse_arxiv_id(raw_id)
    except InvalidArxivId as exc:
        raise MalformedFeed(url, number, "id", str(exc)) from exc
    title = entry.find("atom:title", NS)
    if title is None or not (title.text or "").strip():
        raise MalformedFeed(url, number, "title", "missing" if title is None else "empty")
    summary = entry.find("atom:summary", NS)
    published = _date(entry, "published", url, number)
    if published is None:
        raise MalformedFeed(url, number, "published", "missing")
    authors = [name for a in entry.findall("atom:author", NS) if (name := _text(a, "atom:name"))]
    return Paper(
        id=arxiv_id.id,
        version=arxiv_id.version,
        title_raw=title.text or "",
        abstract_raw=(summary.text or "") if summary is not None else "",
        source=SOURCE,
        authors=authors,
        categories=_categories(entry),
        published_at=published,
        updated_at=_date(entry, "updated", url, number),
        comment=_text(entry, "arxiv:comment"),
        doi=_text(entry, "arxiv:doi"),
        journal_ref=_text(entry, "arxiv:journal_ref"),
        links=_links(entry),
        feed=FeedPlacement(day=published.date(), source=f"harvest:{category}"),
    )


def _raise_if_error_feed(entries: list[ET.Element], url: str) -> None:
    for entry in entries:
        entry_id = _text(entry, "atom:id") or ""
        if entry_id.startswith(ERROR_ID_PREFIX):
            message = _text(entry, "atom:summary") or entry_id.partition("#")[2] or "unknown error"
            raise ArxivApiError(message, url)


def parse_feed(content: bytes | str, *, category: str, url: str = "") -> FeedPage:
    """Parse one API response; raises ArxivApiError for arXiv's error feed, else MalformedFeed."""
    try:
        root = ET.fromstring(content)
    except ET.ParseError as exc:
        raise MalformedFeed(url, None, "feed", f"not valid XML ({exc})") from exc
    if root.tag != f"{{{NS['atom']}}}feed":
        raise MalformedFeed(url, None, "feed", f"expected an Atom <feed>, got <{root.tag}>")
    entries = root.findall("atom:entry", NS)
    _raise_if_error_feed(entries, url)
    return FeedPage(
        papers=[
            parse_entry(entry, category=category, url=url, number=number)
            for number, entry in enumerate(entries, start=1)
        ],
        total_results=_count(root, "totalResults", url),
        start_index=_count(root, "startIndex", url),
        items_per_page=_count(root, "itemsPerPage", url),
    )


def error_message(content: bytes | str) -> str | None:
    """The message of arXiv's error feed in ``content``, or None when it is not one."""
    try:
        root = ET.fromstring(content)
    except ET.ParseError:
        return None
    try:
        _raise_if_error_feed(root.findall("atom:entry", NS), "")
    except ArxivApiError as exc:
        return exc.message
    return None


class _DeadlineStream(httpx.SyncByteStream):
    """A response body that stops with a read timeout once the deadline has passed."""

    def __init__(self, stream: httpx.SyncByteStream, deadline: float):
        self._stream, self._deadline = stream, deadline

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._stream:
            if time.monotonic() > self._deadline:
                raise httpx.ReadTimeout("the deadline passed while reading the answer")
            yield chunk

    def close(self) -> None:
        self._stream.close()


class DeadlineTransport(httpx.BaseTransport):
    """A transport whose requests, redirects and bodies included, end ``seconds`` after it is made.

    httpx's timeouts bound each connect or read on its own; a person waiting on a page needs a
    bound on the whole exchange, so each request gets only the time that is left.
    """

    def __init__(self, seconds: float, inner: httpx.BaseTransport | None = None):
        self._deadline = time.monotonic() + seconds
        self._inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise httpx.ConnectTimeout("the deadline passed before the request", request=request)
        request.extensions["timeout"] = dict.fromkeys(("connect", "read", "write", "pool"), left)
        response = self._inner.handle_request(request)
        assert isinstance(response.stream, httpx.SyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_DeadlineStream(response.stream, self._deadline),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._inner.close()


def deadline_client(seconds: float, headers: dict[str, str] | None = None) -> httpx.Client:
    """A client for one quick lookup: a single try that ends within ``seconds`` in all."""
    return httpx.Client(
        transport=DeadlineTransport(seconds),
        timeout=seconds,
        headers=headers,
        follow_redirects=True,
    )
