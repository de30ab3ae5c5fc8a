"""The HTML pages: the daily feed, paper pages, search, and the Subscribe form."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from broadsheet.feed.periods import Period
from broadsheet.feed.views import FeedSort
from broadsheet.papers.ids import is_arxiv_id
from broadsheet.subscriptions import InvalidEmail, add_subscriber
from broadsheet.web.queries import (
    SearchParams,
    load_feed,
    load_paper,
    load_similar,
    run_search,
    search_params,
)
from broadsheet.web.security import require_csrf

router = APIRouter(include_in_schema=False)


def _render(request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
    templates = request.app.state.templates
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def _is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


@router.get("/", response_class=HTMLResponse)
def daily(
    request: Request,
    day: Annotated[date | None, Query(alias="date")] = None,
    period: Period = Period.daily,
    sort: FeedSort = FeedSort.trending,
    page: Annotated[int, Query(ge=1, le=1000)] = 1,
) -> HTMLResponse:
    feed = load_feed(request.app.state.engine, day, period, sort, page)
    if _is_htmx(request) and page > 1:  # infinite scroll: the next cards only
        return _render(request, "_feed_cards.html", feed=feed, page=page)
    return _render(request, "feed.html", feed=feed, page=page)


@router.get("/papers/{paper_id:path}", response_class=HTMLResponse)
def paper_page(request: Request, paper_id: str) -> HTMLResponse:
    engine = request.app.state.engine
    paper = load_paper(engine, paper_id)
    if paper is None:
        raise HTTPException(404, f"No paper {paper_id!r} here.")
    similar = load_similar(engine, paper["id"])
    return _render(
        request, "paper.html", paper=paper, similar=similar, arxiv=is_arxiv_id(paper["id"])
    )


@router.get("/search", response_class=HTMLResponse)
def search_page(
    request: Request, params: Annotated[SearchParams, Depends(search_params)]
) -> HTMLResponse:
    engine = request.app.state.engine
    found = None
    if params.q.strip():
        found = run_search(engine, params.q, params.filters, params.sort, params.page)
    return _render(
        request,
        "search.html",
        q=params.q,
        filters=params.filters,
        sort=params.sort,
        results=found,
        page=params.page,
    )


@router.post("/subscribe", response_class=HTMLResponse, dependencies=[Depends(require_csrf)])
def subscribe(request: Request, email: Annotated[str, Form(max_length=320)]) -> HTMLResponse:
    try:
        add_subscriber(request.app.state.engine, email)
    except InvalidEmail as exc:
        return _render(request, "subscribe.html", status_code=422, error=str(exc), email=email)
    return _render(request, "subscribe.html", email=email.strip())
