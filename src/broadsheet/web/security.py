"""The secret key, CSRF tokens and the check every POST goes through, the security headers."""

from __future__ import annotations

import hmac
import secrets

from fastapi import HTTPException, Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broadsheet.secret_key import secret_key

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SecurityHeaders",
    "content_security_policy",
    "csrf_token",
    "require_csrf",
    "secret_key",
]

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


def csrf_token(request: Request) -> str:
    """This session's token (made on first use); forms and htmx requests send it back."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


async def require_csrf(request: Request) -> None:
    """A dependency for every POST: the session's token must come back in the form or header."""
    expected = request.session.get("csrf")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        sent = form.get(CSRF_FIELD)
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(expected, sent):
        raise HTTPException(403, "Missing or wrong CSRF token: reload the page and try again.")


def content_security_policy(**extra: str) -> str:
    """The site's policy, with ``extra`` sources added to the named directives.

    Only this origin's own files run: no inline script, handler or style and no eval, so markup
    that slips through escaping cannot execute. Pages may not be framed (clickjacking).
    """
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "connect-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    for name, sources in extra.items():
        directive = name.replace("_", "-")
        directives[directive] = f"{directives.get(directive, '')} {sources}".strip()
    return "; ".join(f"{name} {sources}" for name, sources in directives.items())


def refuse_nul_characters(request: Request) -> None:
    """400 for a NUL character (``%00``) in the path: no stored id or name holds one, and
    PostgreSQL refuses them in any string, so a lookup would otherwise end in a 500. (Query
    text such as a search is cleaned where it is read.)"""
    values = [request.url.path, *request.path_params.values()]
    if any("\x00" in value for value in values if isinstance(value, str)):
        raise HTTPException(400, "A NUL character (%00) is not allowed in an address.")


CONTENT_SECURITY_POLICY = content_security_policy()
HSTS = "max-age=31536000"  # a year, the usual figure; subdomains are the admin's own choice
RETRY_AFTER_DEFAULT = "60"


class SecurityHeaders:
    """ASGI middleware: the security headers on every response, from pages to static files.

    A response that set its own Content-Security-Policy keeps it; none does today: every page,
    the API docs too, runs under the one policy, which names no other host. A 429 that forgot
    Retry-After gets a minute, so every "too many" tells clients when to come back.
    """

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.headers = {
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Cross-Origin-Opener-Policy": "same-origin",
        }
        if https:
            self.headers["Strict-Transport-Security"] = HSTS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
                if message["status"] == 429:
                    headers.setdefault("Retry-After", RETRY_AFTER_DEFAULT)
            await send(message)

        await self.app(scope, receive, send_with_headers)
