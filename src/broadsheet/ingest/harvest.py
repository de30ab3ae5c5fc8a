"""Harvest one arXiv category from the arXiv API, page by page, politely and idempotently.

Requests are spaced ``arxiv_api_delay`` seconds apart (start to start), transient failures
are retried with exponential back-off, and each page is stored in its own transaction, so an
interrupted harvest keeps whole pages only and a re-run merely finds them unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime

import httpx
from sqlalchemy import Engine

from broadsheet.config import Settings
from broadsheet.papers.record import Paper
from broadsheet.papers.repository import upsert_papers
from broadsheet.sources.arxiv_api import (
    ArxivFeedError,
    FeedPage,
    error_message,
    parse_feed,
    query_params,
)

USER_AGENT = "Broadsheet/0.1 (self-hosted papers service)"
RETRY_STATUSES = frozenset({429, 500, 502, 503})
BACKOFF_BASE = 2.0
BACKOFF_CAP = 60.0
RETRY_AFTER_CAP = 600.0
EMPTY_PAGE_RETRIES = 3


class HarvestError(Exception):
    """The harvest stopped; pages stored before the failure stay stored."""


@dataclass
class HarvestSummary:
    category: str
    since: date
    until: date
    requests: int = 0
    retries: int = 0
    pages: int = 0
    read: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    seconds: float = 0.0


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Wait before retry ``attempt`` (0-based): Retry-After when given, else 2 s * 2^attempt."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), RETRY_AFTER_CAP)
    return min(BACKOFF_BASE * 2**attempt, BACKOFF_CAP)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - datetime.now(UTC)).total_seconds()


class _Fetcher:
    """GETs with the request spacing, retries and counters of one harvest."""

    def __init__(self, client: httpx.Client, settings: Settings, sleep: Callable[[float], None]):
        self.client, self.settings, self.sleep = client, settings, sleep
        self.requests = 0
        self.retries = 0
        self._last_start: float | None = None
        self._slept = 0.0  # seconds passed to sleep since the last request started

    def pause(self, seconds: float) -> None:
        if seconds > 0:
            self.sleep(seconds)
            self._slept += seconds

    def _space(self) -> None:
        """Wait until ``arxiv_api_delay`` has passed since the previous request started."""
        if self._last_start is None:
            return
        elapsed = max(time.monotonic() - self._last_start, self._slept)
        self.pause(self.settings.arxiv_api_delay - elapsed)

    def _send(self, request: httpx.Request) -> httpx.Response:
        self._space()
        self._last_start, self._slept = time.monotonic(), 0.0
        self.requests += 1
        return self.client.send(request)

    def get(self, params: dict[str, str]) -> tuple[str, httpx.Response]:
        """The successful response for ``params`` (and its URL), retrying transient failures."""
        request = self.client.build_request("GET", self.settings.arxiv_api_url, params=params)
        url = str(request.url)
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                response = self._send(request)
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            except httpx.HTTPError as exc:
                raise HarvestError(f"{url}: request failed: {exc}") from exc
            else:
                if response.status_code < 400:
                    return url, response
                problem = f"HTTP {response.status_code}"
                detail = error_message(response.content)
                if detail:
                    problem += f" ({detail})"
                if response.status_code not in RETRY_STATUSES:
                    raise HarvestError(f"{url} answered {problem}")
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if attempt >= self.settings.arxiv_api_retries:
                raise HarvestError(f"{url}: gave up after {attempt} retries; last: {problem}")
            self.pause(backoff_seconds(attempt, retry_after))
            attempt += 1
            self.retries += 1


def _fetch_page(
    fetcher: _Fetcher, params: dict[str, str], category: str, known_total: int
) -> FeedPage:
    """One page; an empty page before ``known_total`` is a known arXiv glitch and is retried."""
    start = int(params["start"])
    for attempt in range(EMPTY_PAGE_RETRIES + 1):
        url, response = fetcher.get(params)
        try:
            page = parse_feed(response.content, category=category, url=url)
        except ArxivFeedError as exc:
            raise HarvestError(str(exc)) from exc
        if page.papers or start >= max(page.total_results, known_total):
            return page
        if attempt < EMPTY_PAGE_RETRIES:
            fetcher.retries += 1
            fetcher.pause(backoff_seconds(attempt))
    raise HarvestError(
        f"{url}: arXiv returned {EMPTY_PAGE_RETRIES + 1} empty pages at start={start} although "
        f"it reported {max(page.total_results, known_total)} results; pages before it are stored"
    )


def arxiv_client(settings: Settings) -> httpx.Client:
    """An HTTP client for the arXiv API: its timeout, our User-Agent, redirects followed."""
    return httpx.Client(
        timeout=settings.arxiv_api_timeout,
        headers={"User-Agent": USER_AGENT},
        follow_redirects=True,
    )


def harvest_arxiv(
    engine: Engine,
    *,
    category: str,
    since: date,
    until: date | None = None,
    settings: Settings,
    on_page: Callable[[int, int], None] | None = None,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> HarvestSummary:
    """Store every paper of ``category`` submitted from ``since`` to ``until`` (default today)."""
    until = until or datetime.now(UTC).date()
    if since > until:
        raise HarvestError(f"since ({since}) is after until ({until})")
    if settings.arxiv_api_page_size < 1:
        raise HarvestError("arxiv_api_page_size must be at least 1")
    began = time.monotonic()
    summary = HarvestSummary(category=category, since=since, until=until)
    own_client = client is None
    client = client or arxiv_client(settings)
    fetcher = _Fetcher(client, settings, sleep)
    try:
        start, total = 0, 0
        while True:
            params = query_params(
                category, since, until, start=start, max_results=settings.arxiv_api_page_size
            )
            page = _fetch_page(fetcher, params, category, total)
            total = page.total_results
            if page.papers:
                with engine.begin() as connection:
                    counts = upsert_papers(connection, page.papers)
                summary.pages += 1
                summary.read += len(page.papers)
                summary.added += counts.added
                summary.updated += counts.updated
                summary.unchanged += counts.unchanged
                start += len(page.papers)
            if on_page is not None:
                on_page(summary.read, max(total, summary.read))
            if not page.papers or start >= total:
                break
    finally:
        summary.requests, summary.retries = fetcher.requests, fetcher.retries
        summary.seconds = time.monotonic() - began
        if own_client:
            client.close()
    return summary


def fetch_arxiv_papers(
    ids: list[str],
    *,
    settings: Settings,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Paper]:
    """The papers with these arXiv ids, fetched from the API in one request (with retries).

    Ids arXiv does not know are simply missing from the result.
    """
    if not ids:
        return []
    own_client = client is None
    client = client or arxiv_client(settings)
    try:
        fetcher = _Fetcher(client, settings, sleep)
        url, response = fetcher.get({"id_list": ",".join(ids), "max_results": str(len(ids))})
        try:
            return parse_feed(response.content, category="submission", url=url).papers
        except ArxivFeedError as exc:
            raise HarvestError(str(exc)) from exc
    finally:
        if own_client:
            client.close()
