"""Who is signed in: the session holds a member id and session key; pages and POSTs ask for
the Member.

A session is good while its key is the member's current one: signing out, changing the
password or an admin's ``users sign-out`` replaces the key and ends every earlier session,
including copies of the cookie. The key is random per account, so a cookie outliving its
account opens no other.
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse

from broadsheet.community.accounts import Member, end_sessions, get_member

SESSION_MEMBER = "member_id"
SESSION_KEY = "key"
_UNSET = object()


class SignInRequired(Exception):
    """Raised by ``require_member``; the app answers with a redirect to the sign-in page.

    ``then`` is what to do once signed in (see ``vote_intent``), carried through the form.
    """

    def __init__(self, next_url: str, then: str = ""):
        self.next_url, self.then = next_url, then


def client_address(request: Request) -> str:
    """The caller's address, as per-address rate limits count it.

    It is the connection's peer, unless that peer is a proxy the admin trusts
    (``forwarded_allow_ips``): only then has X-Forwarded-For replaced it. An IPv6 client counts
    by its /64, the block one subscriber usually holds, so it cannot rotate through its own
    addresses; anything that is not an IP address counts as one "unknown" client.
    """
    try:
        address = ipaddress.ip_address(request.client.host if request.client else "")
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network((address, 64), strict=False))
    return str(address)


def current_member(request: Request) -> Member | None:
    """The signed-in member (looked up once per request), or None."""
    member = getattr(request.state, "member", _UNSET)
    if member is _UNSET:
        member = None
        member_id = request.session.get(SESSION_MEMBER)
        if isinstance(member_id, int):
            with request.app.state.engine.connect() as connection:
                member = get_member(connection, member_id)
            presented = request.session.get(SESSION_KEY)
            if (
                member is None
                or not isinstance(presented, str)
                or not secrets.compare_digest(presented, member.session_key)
            ):
                member = None  # signed out (here or elsewhere), or the account is gone
                request.session.pop(SESSION_MEMBER, None)
                request.session.pop(SESSION_KEY, None)
        request.state.member = member
    return member


def sign_in_first(request: Request, then: str = "") -> SignInRequired:
    """The redirect to sign in and come back to the page the visitor is on (path and query)."""
    target = request.headers.get("HX-Current-URL") or request.headers.get("Referer") or "/"
    if request.method == "GET" and not request.headers.get("HX-Current-URL"):
        target = str(request.url)
    return SignInRequired(safe_next(target, request), then)


def require_member(request: Request) -> Member:
    """A dependency for members-only routes."""
    member = current_member(request)
    if member is None:
        raise sign_in_first(request)
    return member


MemberDep = Annotated[Member, Depends(require_member)]


def go_back(request: Request, fallback: str) -> RedirectResponse:
    """After a plain (non-htmx) form POST, return to the page it came from."""
    return RedirectResponse(safe_next(request.headers.get("Referer") or fallback, request), 303)


def safe_next(target: str | None, request: Request | None = None) -> str:
    """A same-site path (with its query) to return to after signing in; else ``/``.

    Browsers drop tabs and newlines from addresses and read a backslash as a slash, so a
    target holding any of them, or starting ``//``, could lead to another host.
    """
    if not target:
        return "/"
    if request is not None:
        origin = str(request.base_url).rstrip("/")
        if target.startswith(origin + "/") or target == origin:
            target = target[len(origin) :] or "/"
    if (
        not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(char) < 0x21 or ord(char) == 0x7F for char in target)
    ):
        return "/"
    return target


def vote_intent(paper_id: str) -> str:
    """The ``then`` that casts an upvote on ``paper_id`` once the visitor has signed in."""
    return f"vote:{paper_id}"


def voted_paper(then: str | None) -> str | None:
    """The paper id of a ``vote:`` intent, or None for anything else."""
    kind, _, paper_id = (then or "").partition(":")
    return paper_id if kind == "vote" and 0 < len(paper_id) <= 100 else None


def sign_in_url(next_url: str, then: str = "") -> str:
    url = "/signin?next=" + quote(next_url, safe="")
    return url + ("&then=" + quote(then, safe="") if then else "")


def start_session(request: Request, member: Member) -> None:
    """Sign ``member`` in with a fresh session and CSRF token: nothing earlier carries over."""
    request.session.clear()
    request.session[SESSION_MEMBER] = member.id
    request.session[SESSION_KEY] = member.session_key
    request.session["csrf"] = secrets.token_urlsafe(32)
    request.state.member = member


def end_session(request: Request) -> None:
    """Sign out: this session and every other session of the member end (API tokens stay:
    settings says so, and offers to revoke them too)."""
    member = current_member(request)
    if member is not None:
        end_sessions(request.app.state.engine, member.username, revoke_tokens=False)
    request.session.clear()
    request.state.member = None
