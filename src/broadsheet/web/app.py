"""The application factory: one FastAPI app over the store named in the settings."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from broadsheet import __version__
from broadsheet.community.passwords import HasherBusy
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
    password,
    subscriptions,
)
from broadsheet.web.routes import (
    settings as settings_routes,
)
from broadsheet.web.security import (
    CSRF_HEADER,
    SecurityHeaders,
    content_security_policy,
    csrf_token,
    secret_key,
)

HERE = Path(__file__).parent
SESSION_COOKIE = "broadsheet_session"
SWAGGER_CDN = "https://cdn.jsdelivr.net"  # where FastAPI's Swagger UI page loads it from


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
        docs_url=None,  # served below, with a policy of its own
        redoc_url=None,
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
    app.add_middleware(SecurityHeaders, https=settings.base_url.startswith("https://"))
    if settings.forwarded_allow_ips:  # outermost: everything inside sees the client's address
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(pages.router)
    app.include_router(accounts.router)
    app.include_router(subscriptions.router)
    app.include_router(settings_routes.router)
    app.include_router(password.router)
    app.include_router(community.router)
    app.include_router(community.submit_router)
    app.include_router(api.router)
    app.include_router(feeds.router)
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(RateLimited, _try_again_later)
    app.add_exception_handler(HasherBusy, _try_again_later)
    docs_page = api_docs_page(app)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        policy = docs_page.headers["Content-Security-Policy"]
        return HTMLResponse(docs_page.body, headers={"Content-Security-Policy": policy})

    @app.get("/healthz", include_in_schema=False)
    async def health() -> dict[str, str]:
        """On the event loop, not in the thread pool: it answers even while every thread works."""
        return {"status": "ok"}

    return app


def api_docs_page(app: FastAPI) -> HTMLResponse:
    """Swagger UI, the one page whose policy lets in another origin (its CDN) and inline styles.

    Its inline start-up script is allowed by its hash alone, so nothing else inline runs.
    """
    page = get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} - Swagger UI")
    scripts = re.findall(r"<script>(.*?)</script>", bytes(page.body).decode(), re.DOTALL)
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in scripts
    ]
    page.headers["Content-Security-Policy"] = content_security_policy(
        script_src=" ".join([SWAGGER_CDN, *hashes]),
        style_src=f"{SWAGGER_CDN} 'unsafe-inline'",
        img_src="https://fastapi.tiangolo.com",
    )
    return page


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


def _try_again_later(request: Request, exc: RateLimited | HasherBusy) -> Response:
    """429 for a spent limit, 503 while busy hashing: either way, when to try again."""
    status = 503 if isinstance(exc, HasherBusy) else 429
    headers = {"Retry-After": str(exc.retry_after)}
    if is_htmx(request):
        return PlainTextResponse(str(exc), status_code=status, headers=headers)
    response = render(request, "error.html", status_code=status, message=str(exc))
    response.headers.update(headers)
    return response
