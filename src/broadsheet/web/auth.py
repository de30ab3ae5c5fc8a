"""Who is signed in: the session holds a member id; pages and POSTs ask for the Member."""

from __future__ import annotations

import secrets
from urllib.parse import quote

from fastapi import Request

from broadsheet.community.accounts import Member, get_member

SESSION_MEMBER = "member_id"
_UNSET = object()


class SignInRequired(Exception):
    """Raised by ``require_member``; the app answers with a redirect to the sign-in page."""

    def __init__(self, next_url: str):
        self.next_url = next_url


def client_address(request: Request) -> str:
    """The caller's address (what per-address rate limits count)."""
    return request.client.host if request.client else "unknown"


def current_member(request: Request) -> Member | None:
    """The signed-in member (looked up once per request), or None."""
    member = getattr(request.state, "member", _UNSET)
    if member is _UNSET:
        member = None
        member_id = request.session.get(SESSION_MEMBER)
        if isinstance(member_id, int):
            with request.app.state.engine.connect() as connection:
                member = get_member(connection, member_id)
        request.state.member = member
    return member


def require_member(request: Request) -> Member:
    """A dependency for members-only routes."""
    member = current_member(request)
    if member is None:
        target = request.headers.get("HX-Current-URL") or request.headers.get("Referer") or "/"
        if request.method == "GET":
            target = str(request.url)
        raise SignInRequired(safe_next(target, request))
    return member


def safe_next(target: str | None, request: Request | None = None) -> str:
    """A same-site path to return to after signing in; anything else becomes ``/``."""
    if not target:
        return "/"
    if request is not None:
        origin = str(request.base_url).rstrip("/")
        if target.startswith(origin):
            target = target[len(origin) :] or "/"
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def sign_in_url(next_url: str) -> str:
    return "/signin?next=" + quote(next_url, safe="")


def start_session(request: Request, member: Member) -> None:
    """Sign ``member`` in with a fresh session and CSRF token: nothing earlier carries over."""
    request.session.clear()
    request.session[SESSION_MEMBER] = member.id
    request.session["csrf"] = secrets.token_urlsafe(32)
    request.state.member = member


def end_session(request: Request) -> None:
    request.session.clear()
    request.state.member = None
