"""The application factory: one FastAPI app over the store named in the settings."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from broadsheet import __version__
from broadsheet.community.ratelimit import RateLimited
from broadsheet.config import Settings, get_settings
from broadsheet.db.engine import open_store
from broadsheet.search.hybrid import SearchRequest, search_papers
from broadsheet.web import format as formatting
from broadsheet.web.auth import SignInRequired, sign_in_url
from broadsheet.web.page_cache import PageCache
from broadsheet.web.render import is_htmx, render
from broadsheet.web.routes import (
    accounts,
    api,
    community,
    feeds,
    pages,
    subscriptions,
)
from broadsheet.web.routes import (
    settings as settings_routes,
)
from broadsheet.web.security import CSRF_HEADER, csrf_token, secret_key

HERE = Path(__file__).parent
SESSION_COOKIE = "broadsheet_session"


def make_templates(settings: Settings) -> Jinja2Templates:
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.auto_reload = False  # templates ship with the package: no stat per render
    templates.env.filters["card_date"] = formatting.card_date
    templates.env.filters["marked"] = formatting.marked
    templates.env.globals.update(
        site_name=settings.site_name, csrf_token=csrf_token, csrf_header=CSRF_HEADER
    )
    return templates


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title=f"{settings.site_name} API",
        version=__version__,
        description="Daily papers, paper pages, hybrid search and similar papers as JSON.",
    )
    app.state.settings = settings
    app.state.engine = open_store(settings.database_url)
    app.state.templates = make_templates(settings)
    app.state.page_cache = PageCache()  # rendered feed fragments, for visitors
    app.state.feed_cache = PageCache()  # the feed's rows, for everyone
    if settings.warm_up_search:
        threading.Thread(target=warm_up_search, args=(app.state.engine,), daemon=True).start()
    app.state.secret = secret_key(settings)
    app.add_middleware(
        SessionMiddleware,
        secret_key=app.state.secret,
        session_cookie=SESSION_COOKIE,
        same_site="lax",
        https_only=settings.base_url.startswith("https://"),
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(pages.router)
    app.include_router(accounts.router)
    app.include_router(subscriptions.router)
    app.include_router(settings_routes.router)
    app.include_router(community.router)
    app.include_router(community.submit_router)
    app.include_router(api.router)
    app.include_router(feeds.router)
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(RateLimited, _rate_limited)

    @app.get("/healthz", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def warm_up_search(engine) -> None:
    """Run one search in the background: the model and vectors are loaded before visitors ask."""
    try:
        search_papers(engine, SearchRequest("warm up"))
    except Exception as exc:  # search reports its own problems to the visitor who asks
        logging.getLogger(__name__).warning("search warm-up failed: %s", exc)


def _sign_in_required(request: Request, exc: SignInRequired) -> Response:
    """Members-only actions send visitors to sign in, then back where they were."""
    target = sign_in_url(exc.next_url)
    if is_htmx(request):  # htmx follows HX-Redirect with a full page load
        return PlainTextResponse("Sign in first.", status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def _rate_limited(request: Request, exc: RateLimited) -> Response:
    headers = {"Retry-After": str(exc.retry_after)}
    if is_htmx(request):
        return PlainTextResponse(str(exc), status_code=429, headers=headers)
    response = render(request, "error.html", status_code=429, message=str(exc))
    response.headers.update(headers)
    return response
