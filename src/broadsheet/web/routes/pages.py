"""The HTML pages: the daily feed, paper pages, organisations and search."""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from broadsheet.community.comments import MAX_COMMENT, list_comments
from broadsheet.community.follows import Kind, is_following
from broadsheet.db.version import current_version
from broadsheet.feed.for_you import member_scores
from broadsheet.feed.organisations import organisation_page
from broadsheet.feed.periods import Period
from broadsheet.feed.views import FeedPage, FeedSort, utc_now
from broadsheet.papers.citations import highwire_tags
from broadsheet.papers.ids import is_arxiv_id
from broadsheet.search.filters import store_has_categories
from broadsheet.web.auth import current_member
from broadsheet.web.links import site_url
from broadsheet.web.lookup import look_up_query
from broadsheet.web.page_cache import visitor_key
from broadsheet.web.paging import Paging, paging
from broadsheet.web.queries import (
    PAGE_SIZE,
    Day,
    load_feed,
    load_paper,
    load_similar,
    run_search,
)
from broadsheet.web.render import is_htmx, marks_for, render, render_fragment
from broadsheet.web.routes.library import paper_library_panel
from broadsheet.web.search_form import SearchForm, read_search_form
from broadsheet.web.stores import read_engine

router = APIRouter(include_in_schema=False)


# The feed page's sorts: the shared ones, and a member's own ("for you").
PageSort = StrEnum("PageSort", [*((s.name, s.value) for s in FeedSort), ("for_you", "for_you")])


@router.get("/", response_class=HTMLResponse)
def daily(
    request: Request,
    day: Annotated[Day | None, Query(alias="date")] = None,
    period: Period = Period.daily,
    sort: PageSort = PageSort.trending,
    page: Annotated[int, Query(ge=1, le=1000)] = 1,
) -> HTMLResponse:
    engine = read_engine(request)
    more_cards = is_htmx(request) and page > 1  # infinite scroll: the next cards only
    fragment = "_feed_cards.html" if more_cards else "_feed_main.html"
    member = current_member(request)
    if sort == PageSort.for_you and member is not None:  # the member's own order: no cache
        model = request.app.state.settings.embedding_model

        def scores(ids: list[str]) -> dict[str, float]:
            return member_scores(engine, member.id, model, ids)

        feed = load_feed(engine, day, period, FeedSort.trending, page, personal=scores)
        html = _feed_html(request, fragment, feed, page)
        return HTMLResponse(html) if more_cards else render(request, "feed.html", main_html=html)
    shared = FeedSort.trending if sort == PageSort.for_you else FeedSort(sort.value)
    with engine.connect() as connection:  # the counter of the store the rows come from
        version = current_version(connection)
    key = (day, period, shared, page, utc_now().date())
    caches = request.app.state.page_cache, request.app.state.feed_cache
    # the feed's rows are the same for everyone; visitors also share the rendered cards
    feed = caches[1].get_or_make(key, version, lambda: load_feed(engine, day, period, shared, page))

    def make() -> Markup:
        return _feed_html(request, fragment, feed, page)

    # members see their own votes: their cards are drawn for them
    if member is not None:
        html = make()
    else:
        html = caches[0].get_or_make(visitor_key(request, fragment, *key), version, make)
    if more_cards:
        return HTMLResponse(html)
    return render(request, "feed.html", main_html=html)


def _feed_html(request: Request, fragment: str, feed: FeedPage | None, page: int) -> Markup:
    marks = marks_for(request, [p["id"] for p in feed.papers]) if feed else {}
    pages = feed_paging(feed, page) if feed else None
    return render_fragment(request, fragment, feed=feed, page=page, **marks, pages=pages)


def feed_paging(feed: FeedPage, page: int) -> Paging:
    """The feed's page links: its window and sort stay, the page changes."""
    window = feed.window
    params = [("date", str(window.first)), ("period", window.period.value)]
    return paging("/", [*params, ("sort", feed.sort_name)], page, feed.total)


@router.get("/papers/{paper_id:path}", response_class=HTMLResponse)
def paper_page(request: Request, paper_id: str) -> HTMLResponse:
    engine = read_engine(request, own_writes=True)  # where comment and submit forms land
    member = current_member(request)
    is_admin = member is not None and member.is_admin
    paper = load_paper(engine, paper_id, include_hidden=is_admin)
    if paper is None:
        raise HTTPException(404, f"No paper {paper_id!r} here.")
    similar = load_similar(
        read_engine(request), paper["id"], model=request.app.state.settings.embedding_model
    )
    with engine.connect() as connection:
        comments = list_comments(connection, paper["id"], include_hidden=is_admin)
    return render(
        request,
        "paper.html",
        paper=paper,
        similar=similar,
        comments=comments,
        arxiv=is_arxiv_id(paper["id"]),
        citation_tags=highwire_tags(paper, site_url(request)),
        library=paper_library_panel(request, paper["id"]),
        max_length=MAX_COMMENT,
        **marks_for(request, [paper["id"], *(s.paper["id"] for s in similar)]),
    )


@router.get("/organisations/{slug}", response_class=HTMLResponse)
def organisation(
    request: Request, slug: str, page: Annotated[int, Query(ge=1, le=1000)] = 1
) -> HTMLResponse:
    with read_engine(request).connect() as connection:
        found = organisation_page(connection, slug, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        following = found is not None and is_following(
            connection, current_member(request), Kind.organisation, found.slug
        )
    if found is None:
        raise HTTPException(404, f"No organisation {slug!r} here.")
    marks = marks_for(request, [p["id"] for p in found.papers])
    return render(
        request, "organisation.html", org=found, page=page, **marks, is_following=following
    )


def less_close_url(pages: Paging, listed: int) -> str:
    """The search with its less close results listed too, at the page where they begin."""
    params = (*((name, value) for name, value in pages.params if name != "more"), ("more", "1"))
    return replace(pages, params=params).url(listed // pages.size + 1) + "#less-close"


@router.get("/search", response_class=HTMLResponse)
def search_page(
    request: Request,
    form: Annotated[SearchForm, Depends(read_search_form)],
    exact: Annotated[bool, Query(description="Search the words as typed, uncorrected")] = False,
    explain: Annotated[bool, Query(description="Admins: each result's scores by stage")] = False,
    more: Annotated[bool, Query(description="List the less close results too")] = False,
) -> Response:
    params = form.params
    member = current_member(request)
    engine = read_engine(request)
    lookup = look_up_query(request, params.q)
    if lookup.paper_url:  # an arXiv id or URL typed into the box opens that paper
        return RedirectResponse(lookup.paper_url, status_code=303)
    found = None
    if params.q.strip() and not form.problems:
        found = run_search(
            engine,
            params.q,
            params.filters,
            params.sort,
            params.page,
            spell=not exact,
            model=request.app.state.settings.embedding_model,
            more=more,
        )
    shown = [hit.paper["id"] for hit in found.hits] if found else []
    with engine.connect() as connection:
        categories = store_has_categories(connection)
    pages = (
        paging("/search", request.query_params.multi_items(), params.page, found.total)
        if found
        else None
    )
    return render(
        request,
        "search.html",
        **marks_for(request, shown),
        q=params.q,
        filters=params.filters,
        sort=params.sort,
        results=found,
        page=params.page,
        pages=pages,
        more_url=less_close_url(pages, found.total)
        if found and found.less_close and not more
        else None,
        lookup=lookup,
        form=form,
        categories=categories,
        explain=explain and member is not None and member.is_admin,
        status_code=422 if form.problems else 200,
    )
