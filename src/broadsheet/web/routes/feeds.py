"""Atom feeds of the daily page and of any search (feedgen).

Every text put into a feed passes through ``xml_text``: queries and stored papers may hold
characters an XML document cannot, and lxml refuses to write them. Links are absolute, from
``site_url``: BASE_URL when set, else the address the feed was fetched from.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from feedgen.feed import FeedGenerator

from broadsheet.feed.periods import Period
from broadsheet.feed.views import FeedSort
from broadsheet.search.filters import SearchFilters
from broadsheet.web.format import xml_text
from broadsheet.web.links import here, site_url
from broadsheet.web.queries import Day, load_feed, run_search
from broadsheet.web.stores import read_engine

router = APIRouter(include_in_schema=False)
ATOM = "application/atom+xml; charset=utf-8"


def _feed(request: Request, title: str, page_path: str) -> FeedGenerator:
    """A feed whose id and ``self`` link are its canonical address (path and the parameters
    it reads: each query is a feed of its own), and whose ``alternate`` is ``page_path``."""
    base = xml_text(site_url(request))
    own = base + xml_text(here(request))
    feed = FeedGenerator()
    feed.id(own)
    feed.title(xml_text(title))
    feed.link(href=own, rel="self")
    feed.link(href=base + xml_text(page_path), rel="alternate")
    feed.language("en")
    return feed


def _entry(feed: FeedGenerator, request: Request, paper: dict[str, Any], when: datetime) -> None:
    base = site_url(request)
    url = xml_text(f"{base}/papers/{paper['id']}")
    entry = feed.add_entry(order="append")
    entry.id(url)
    entry.title(xml_text(paper["title"]))
    entry.link(href=url)
    entry.summary(xml_text(paper["abstract"]))
    for name in paper["authors"][:20]:
        entry.author(name=xml_text(name))
    entry.updated(when.replace(tzinfo=UTC))
    if paper.get("published_at"):
        entry.published(paper["published_at"].replace(tzinfo=UTC))


EMPTY_FEED_UPDATED = datetime(2000, 1, 1, tzinfo=UTC)  # Atom needs a date even with no entries


def _response(feed: FeedGenerator) -> Response:
    if not feed.entry():
        feed.updated(EMPTY_FEED_UPDATED)
    return Response(feed.atom_str(pretty=True), media_type=ATOM)


@router.get("/feed.atom")
def daily_feed(
    request: Request, day: Annotated[Day | None, Query(alias="date")] = None
) -> Response:
    """The daily page, trending first."""
    site = request.app.state.settings.site_name
    page = load_feed(read_engine(request), day, Period.daily, FeedSort.trending)
    feed = _feed(request, f"{site}: daily papers", f"/?date={day}" if day else "/")
    for paper in page.papers if page else []:
        _entry(feed, request, paper, datetime.combine(paper["feed_day"], time()))
    return _response(feed)


@router.get("/search.atom")
def search_feed(request: Request, q: Annotated[str, Query(max_length=10_000)] = "") -> Response:
    """A search as a feed: subscribe to a query in a feed reader."""
    site = request.app.state.settings.site_name
    feed = _feed(request, f"{site}: search “{q.strip()}”", "/search?" + urlencode({"q": q}))
    results = run_search(
        read_engine(request),
        q,
        SearchFilters(),
        limit=50,
        model=request.app.state.settings.embedding_model,
    )
    for hit in results.hits:
        paper = hit.paper
        _entry(feed, request, paper, paper.get("published_at") or paper["modified_at"])
    return _response(feed)
