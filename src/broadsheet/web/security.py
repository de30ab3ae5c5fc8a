"""The secret key, per-session CSRF tokens, and the check every POST goes through."""

from __future__ import annotations

import hmac
import secrets

from fastapi import HTTPException, Request

from broadsheet.secret_key import secret_key

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "csrf_token", "require_csrf", "secret_key"]

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
