"""A request id on every request, and one log line per request.

The id comes from the client's ``X-Request-ID`` (a proxy's, say) when it is a short, safe token,
else it is made here; every response echoes it in ``X-Request-ID``, error pages show it
(``request.state.request_id``) for a reader to quote, and the request's log line and every record
logged while it is served carry it. The line names the route's template (``/papers/{id}``, the
path itself when no route matched), the status and the time taken, and the address with its
secrets redacted (``web/access_log.py``).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broadsheet.logs import ACCESS_LOGGER, current_request_id
from broadsheet.web.access_log import redact

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
access_log = logging.getLogger(ACCESS_LOGGER)

ServerError = Callable[[Request, Exception], Awaitable[Response]]


def request_id_from(given: str | None) -> str:
    """``given`` when it is 1–64 letters, digits, dots, dashes or underscores, else a new id."""
    if given is not None and _SAFE_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """The template of the route that answered (``/papers/{paper_id}``, ``/static/{path}``),
    else the path asked for."""
    template = getattr(scope.get("route"), "path_format", None)
    if isinstance(template, str):
        return template
    if "app_root_path" in scope:  # a mount (static files) answered: it adds itself to root_path
        mount = scope.get("root_path", "").removeprefix(scope["app_root_path"])
        if mount:
            return f"{mount}/{{path}}"
    return scope["path"]


class RequestLog:
    """ASGI middleware: the request id, its response header, and the request's log line.

    Inside the session and security headers' middleware, so that what it answers gets their
    headers too: an exception that escapes the app (a bug) is answered here by ``server_error``
    (a plain line if that fails too), then raised on for the server to log its traceback.
    """

    def __init__(self, app: ASGIApp, *, server_error: ServerError | None = None) -> None:
        self.app = app
        self.server_error = server_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_from(Headers(scope=scope).get(REQUEST_ID_HEADER))
        scope.setdefault("state", {})["request_id"] = request_id
        # each request runs in a task of its own: the id goes no further than this request
        current_request_id.set(request_id)
        path = _logged_path(scope)
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if status is None:
                await self._answer_error(scope, receive, send_with_id, exc)
            raise
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            _log_request(scope, path, status or 500, elapsed_ms, request_id)

    async def _answer_error(
        self, scope: Scope, receive: Receive, send: Send, exc: Exception
    ) -> None:
        request = Request(scope, receive)
        response: Response | None = None
        if self.server_error is not None:
            try:
                response = await self.server_error(request, exc)
            except Exception:
                response = None  # the page could not be drawn: the plain line below
        if response is None:
            text = f"Internal Server Error\nRequest id: {scope['state']['request_id']}\n"
            response = PlainTextResponse(text, status_code=500)
        await response(scope, receive, send)


def _logged_path(scope: Scope) -> str:
    """The path and query as asked for, with tokens, passwords and keys redacted."""
    path = quote(scope.get("root_path", "") + scope["path"])
    query = scope.get("query_string", b"").decode("latin-1")
    return redact(f"{path}?{query}" if query else path)


def _log_request(scope: Scope, path: str, status: int, elapsed_ms: float, request_id: str) -> None:
    client = scope.get("client")
    address = f"{client[0]}:{client[1]}" if client else "-"
    method, route = scope["method"], route_template(scope)
    access_log.info(
        '%s - "%s %s HTTP/%s" %d %s %.1fms request_id=%s',
        address, method, path, scope.get("http_version", "1.1"), status, route, elapsed_ms,
        request_id,
        extra={
            "request_id": request_id,
            "method": method,
            "route": route,
            "path": path,
            "status": status,
            "duration_ms": round(elapsed_ms, 1),
            "client": address,
        },
    )  # fmt: skip
