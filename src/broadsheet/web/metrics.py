"""``/metrics`` for Prometheus, and the count and latency of every request by route template.

Off unless ``metrics_enabled``. A scrape must come from an address in ``metrics_allow`` and,
when ``metrics_token`` is set, carry ``Authorization: Bearer <token>``; any other request for
``/metrics`` goes on to the site, which has no such page: the same 404 as any unknown
address, so the endpoint does not reveal itself.

Labels stay few whatever clients send: the route's template (``/papers/{paper_id}``), not the
path; ``<unmatched>`` for every address no route serves; methods outside the usual ones as
``OTHER``; the status by class (``2xx``).
"""

from __future__ import annotations

import hmac
import ipaddress
import time

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from pydantic import SecretStr
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broadsheet.config import Settings
from broadsheet.metrics import (
    HTTP_DURATION,
    HTTP_REQUESTS,
    StoreCollector,
    process_exited,
    scrape_registry,
)

PATH = "/metrics"
UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def install_metrics(app: FastAPI, settings: Settings) -> None:
    """Serve ``/metrics`` and count requests, when the settings ask for it."""
    if not settings.metrics_enabled:
        return
    registry = scrape_registry([StoreCollector(app.state.engine, settings.embedding_model)])
    access = MetricsAccess(settings.metrics_allow, settings.metrics_token)
    app.add_middleware(RequestMetrics, access=access, registry=registry)


class MetricsAccess:
    """Who may read ``/metrics``: an allowed address, with the token when one is set."""

    def __init__(self, allow: str, token: SecretStr | None):
        entries = [entry for entry in allow.split(",") if entry]
        self.anyone = "*" in entries
        self.networks = [
            ipaddress.ip_network(entry, strict=False) for entry in entries if entry != "*"
        ]
        secret = token.get_secret_value() if token is not None else ""
        self.token = secret.encode() if secret else None

    def allows(self, scope: Scope) -> bool:
        return self._from_allowed_address(scope) and self._with_token(scope)

    def _from_allowed_address(self, scope: Scope) -> bool:
        if self.anyone:
            return True
        client = scope.get("client")
        try:
            address = ipaddress.ip_address(client[0] if client else "")
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def _with_token(self, scope: Scope) -> bool:
        if self.token is None:
            return True
        scheme, _, given = Headers(scope=scope).get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self.token
        )


def route_template(scope: Scope) -> str:
    """The template of the route that answered (``/papers/{paper_id}``), else ``<unmatched>``."""
    return getattr(scope.get("route"), "path_format", None) or UNMATCHED


class RequestMetrics:
    """Pure ASGI: counts and times each request, and answers allowed scrapes of ``/metrics``."""

    def __init__(self, app: ASGIApp, access: MetricsAccess, registry: CollectorRegistry):
        self.app, self.access, self.registry = app, access, registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, _noting_shutdown(receive), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless an answer starts: the app raised
        method = scope["method"] if scope["method"] in METHODS else "OTHER"

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        route = None
        try:
            if scope["path"] == PATH and method in ("GET", "HEAD") and self.access.allows(scope):
                route = PATH
                await self._scrape(scope, receive, sending)
            else:
                await self.app(scope, receive, sending)
        finally:
            labels = (method, route or route_template(scope), f"{status // 100}xx")
            HTTP_REQUESTS.labels(*labels).inc()
            HTTP_DURATION.labels(*labels).observe(time.perf_counter() - started)

    async def _scrape(self, scope: Scope, receive: Receive, send: Send) -> None:
        encoder, content_type = choose_encoder(Headers(scope=scope).get("accept", ""))
        body = await run_in_threadpool(encoder, self.registry)  # the store is read here
        headers = {"Cache-Control": "no-store"}
        await Response(body, media_type=content_type, headers=headers)(scope, receive, send)


def _noting_shutdown(receive: Receive) -> Receive:
    async def receiving() -> Message:
        message = await receive()
        if message["type"] == "lifespan.shutdown":
            process_exited()
        return message

    return receiving
