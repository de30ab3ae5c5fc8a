"""The application factory: one FastAPI app over the store named in the settings."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import asynccontextmanager
from http import HTTPStatus
from importlib.resources import files
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from fastapi.utils import is_body_allowed_for_status_code
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from broadsheet import __version__
from broadsheet.community.comments import can_delete, can_edit
from broadsheet.community.passwords import HasherBusy
from broadsheet.community.ratelimit import RateLimited
from broadsheet.community.site_settings import SiteSettingsCache
from broadsheet.config import Settings, get_settings
from broadsheet.db.engine import make_engine, open_store
from broadsheet.db.timeouts import Timeouts
from broadsheet.feed.views import utc_now
from broadsheet.search.embed import preload_query_embedder
from broadsheet.search.hybrid import SearchRequest, search_papers
from broadsheet.web import format as formatting
from broadsheet.web.access_log import redact_tokens_in_access_log
from broadsheet.web.auth import SignInRequired, sign_in_url
from broadsheet.web.errors import describe, heading_for, wants_json
from broadsheet.web.links import coins_title, here
from broadsheet.web.metrics import install_metrics
from broadsheet.web.page_cache import PageCache
from broadsheet.web.render import is_htmx, render
from broadsheet.web.request_id import RequestLog
from broadsheet.web.routes import (
    account_data,
    accounts,
    admin,
    api,
    api_member,
    assets,
    citations,
    community,
    docs,
    feeds,
    follows,
    for_you,
    library,
    moderation,
    pages,
    password,
    subscriptions,
)
from broadsheet.web.routes import authors as author_routes
from broadsheet.web.routes import (
    settings as settings_routes,
)
from broadsheet.web.security import (
    CSRF_HEADER,
    SecurityHeaders,
    csrf_token,
    refuse_nul_characters,
    secret_key,
)
from broadsheet.web.unavailable import install as install_unavailable

HERE = Path(__file__).parent
VENDOR = Path(str(files("broadsheet_vendor")))  # htmx and Swagger UI, as published
SESSION_COOKIE = "broadsheet_session"
log = logging.getLogger(__name__)


def make_templates(settings: Settings) -> Jinja2Templates:
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.auto_reload = False  # templates ship with the package: no stat per render
    templates.env.filters["card_date"] = formatting.card_date
    templates.env.filters["marked"] = formatting.marked
    templates.env.filters["full_datetime"] = formatting.full_datetime
    templates.env.filters["iso_utc"] = formatting.iso_utc
    templates.env.globals.update(can_edit_comment=can_edit, can_delete_comment=can_delete)
    templates.env.globals.update(coins_title=coins_title, here=here)
    templates.env.globals.update(today=lambda: utc_now().date())
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
        docs_url=None,  # routes/docs.py serves Swagger UI from the package's static files
        redoc_url=None,
        dependencies=[Depends(refuse_nul_characters)],
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.engine = open_store(settings.database_url, Timeouts.for_requests(settings))
    app.state.read_engine = read_engine_for(settings, app.state.engine)
    app.state.templates = make_templates(settings)
    app.state.page_cache = PageCache("pages")  # rendered feed fragments, for visitors
    app.state.feed_cache = PageCache("feed_rows")  # the feed's rows, for everyone
    app.state.site_settings = SiteSettingsCache()  # what admins set while the site runs
    install_metrics(app, settings)  # /metrics and the requests' counts, when enabled
    app.state.search_ready = threading.Event()
    if settings.warm_up_search:
        start_warm_up(app.state.read_engine, app.state.search_ready, settings.embedding_model)
    else:  # the first search loads the model itself
        app.state.search_ready.set()
    app.state.secret = secret_key(settings)
    redact_tokens_in_access_log()  # mailed links' tokens stay out of the server's log
    app.add_middleware(RequestLog, server_error=_server_error)  # inside the headers' middleware
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
    # third-party builds first: the more specific mount must match before /static
    app.mount("/static/vendor", StaticFiles(directory=VENDOR), name="vendor")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(citations.router)  # before the paper page's /papers/{id:path}
    app.include_router(library.actions)
    app.include_router(for_you.actions)
    app.include_router(follows.actions)
    app.include_router(account_data.actions)
    app.include_router(account_data.pages)
    app.include_router(follows.pages)
    app.include_router(for_you.pages)
    app.include_router(library.pages)
    app.include_router(pages.router)
    app.include_router(assets.router)
    app.include_router(author_routes.router)
    app.include_router(accounts.router)
    app.include_router(subscriptions.router)
    app.include_router(settings_routes.router)
    app.include_router(password.router)
    app.include_router(community.router)
    app.include_router(community.submit_router)
    app.include_router(moderation.router)
    app.include_router(admin.router)
    app.include_router(admin.actions)
    app.include_router(api_member.router)  # before /api/papers/{id:path}: no overlap, clearer
    app.include_router(api.router)
    app.include_router(feeds.router)
    app.include_router(docs.router)
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(RateLimited, _try_again_later)
    app.add_exception_handler(HasherBusy, _try_again_later)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    install_unavailable(app)  # 503s while the store cannot answer, and /readyz

    @app.get("/healthz", include_in_schema=False)
    async def health() -> Response:
        """Alive: 200 while the process serves, warming up or not (readiness: /readyz).

        On the event loop, not in the thread pool: it answers even while every thread works.
        """
        return JSONResponse({"status": "ok"})

    return app


def read_engine_for(settings: Settings, engine: Engine) -> Engine:
    """The replica's engine when one is set (read-only: never migrated), else ``engine``."""
    if not settings.read_database_url:
        return engine
    return make_engine(settings.read_database_url, Timeouts.for_requests(settings))


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    if app.state.read_engine is not app.state.engine:  # the store's engine is shared per URL
        app.state.read_engine.dispose()


def start_warm_up(engine: Engine, ready: threading.Event, model_name: str) -> None:
    """Load the query model and vectors in the background, then set ``ready`` and log it.

    The model's load is announced before this returns: searches that come first answer from
    keywords instead of waiting for it.
    """
    started = time.monotonic()
    model = preload_query_embedder(model_name)
    threading.Thread(
        target=_warm_up,
        args=(engine, model_name, model, ready, started),
        name="warm-up",
        daemon=True,
    ).start()


def _warm_up(
    engine: Engine, model_name: str, model: Future, ready: threading.Event, started: float
) -> None:
    try:
        model.result()
        search_papers(engine, SearchRequest("warm up"), model=model_name)  # reads the vectors in
    except Exception as exc:  # search reports its own problems to the visitor who asks
        log.warning("search warm-up failed: %s", exc)
    finally:
        ready.set()
    # in the server's own log, which `broadsheet serve` shows (the app's loggers go nowhere there)
    logging.getLogger("uvicorn.error").info("search ready in %.1f s", time.monotonic() - started)


def _sign_in_required(request: Request, exc: SignInRequired) -> Response:
    """Members-only actions send visitors to sign in, then back where they were."""
    target = sign_in_url(exc.next_url, exc.then)
    if is_htmx(request):  # htmx follows HX-Redirect with a full page load
        return PlainTextResponse("Sign in first.", status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def _try_again_later(request: Request, exc: RateLimited | HasherBusy) -> Response:
    """429 for a spent limit, 503 while busy hashing: either way, when to try again."""
    status = 503 if isinstance(exc, HasherBusy) else 429
    headers = {"Retry-After": str(exc.retry_after)}
    if is_htmx(request):
        return PlainTextResponse(str(exc), status_code=status, headers=headers)
    response = render(
        request, "error.html", status_code=status, heading=heading_for(status), message=str(exc)
    )
    response.headers.update(headers)
    return response


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """The API answers FastAPI's JSON; pages answer a page, with the same status and headers."""
    status = exc.status_code
    if wants_json(request) or not is_body_allowed_for_status_code(status):
        return await http_exception_handler(request, exc)
    message = str(exc.detail)
    if status == 404 and message == HTTPStatus(404).phrase:  # no route here, not a missing row
        message = f"There is no page at {request.url.path}."
    return await _error_page(request, status, message, headers=exc.headers)


async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
    """Parameters that cannot be read: FastAPI's JSON for the API, one line each for people."""
    if wants_json(request):
        return await request_validation_exception_handler(request, exc)
    problems = describe(exc.errors())
    message = "This address has values the site cannot read:"
    return await _error_page(request, 422, message, problems)


async def _server_error(request: Request, exc: Exception) -> Response:
    """A bug: FastAPI's JSON shape under /api/, else an error page with the request id."""
    if wants_json(request):
        return JSONResponse({"detail": "Internal Server Error"}, status_code=500)
    message = "Something went wrong on the server. It has been logged."
    return await _error_page(request, 500, message)


async def _error_page(
    request: Request,
    status: int,
    message: str,
    problems: Sequence[str] = (),
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An error in the site's layout (a line of text for htmx, which shows it in place)."""
    if is_htmx(request):
        text = "; ".join(problems) or message
        return PlainTextResponse(text, status_code=status, headers=headers)
    response = await run_in_threadpool(  # rendering reads the member from the store
        render,
        request,
        "error.html",
        status_code=status,
        heading=heading_for(status),
        message=message,
        problems=problems,
    )
    response.headers.update(headers or {})
    return response
