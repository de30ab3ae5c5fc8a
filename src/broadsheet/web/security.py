"""The secret key, per-session CSRF tokens, and the check every POST goes through."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from fastapi import HTTPException, Request

from broadsheet.config import Settings, cache_dir

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


def secret_key(settings: Settings) -> str:
    """``BROADSHEET_SECRET_KEY``, else a random key kept beside the store (made on first use)."""
    if settings.secret_key:
        return settings.secret_key
    database = settings.database_url.removeprefix("sqlite:///")
    if settings.database_url.startswith("sqlite:///") and database not in ("", ":memory:"):
        path = Path(f"{database}.secret")
    else:
        path = cache_dir() / "secret-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f"{path.name}.part-{os.getpid()}")
        descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            os.link(scratch, path)  # atomic, and never replaces a key another process made
        except FileExistsError:
            pass
        finally:
            scratch.unlink()
    return path.read_text().strip()


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
