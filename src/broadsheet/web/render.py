"""Rendering pages with what every template needs: the member and the marks on their cards."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, fields

from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from broadsheet.community.accounts import Member
from broadsheet.community.marks import CardMarks, card_marks
from broadsheet.digest.subscriptions import has_subscription, mail_is_configured
from broadsheet.web.auth import current_member

MARKS = [mark.name for mark in fields(CardMarks)]  # voted, saved, dismissed


def render(request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
    templates = request.app.state.templates
    context.setdefault("member", current_member(request))
    for mark in MARKS:
        context.setdefault(mark, set())
    context.update(_digest_frame(request, context["member"]))
    context.setdefault("site", request.app.state.site_settings.get(request.app.state.engine))
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def _digest_frame(request: Request, member: Member | None) -> dict[str, bool]:
    """For the page frame: whether the member has a digest already (no sign-up form then),
    and, for admins only, whether the site cannot send mail."""
    if member is None:
        return {"digest_subscribed": False, "mail_unset": False}
    state = request.app.state
    return {
        "digest_subscribed": has_subscription(state.engine, member.id),
        "mail_unset": member.is_admin and not mail_is_configured(state.settings),
    }


def render_fragment(request: Request, template: str, **context) -> Markup:
    """A template rendered to HTML for embedding in a page (or caching)."""
    context.setdefault("member", current_member(request))
    for mark in MARKS:
        context.setdefault(mark, set())
    html = request.app.state.templates.get_template(template).render(request=request, **context)
    return Markup(html)


def marks_for(request: Request, paper_ids: Iterable[str]) -> dict[str, set[str]]:
    """For the context of a page of cards: which of its papers the signed-in member upvoted
    (``voted``), saved and dismissed, drawn on each card's buttons."""
    member = current_member(request)
    if member is None:
        return {mark: set() for mark in MARKS}
    with request.app.state.engine.connect() as connection:
        return asdict(card_marks(connection, member, paper_ids))


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"
