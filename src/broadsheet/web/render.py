"""Rendering pages with what every template needs: the member and their votes."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from broadsheet.community.accounts import Member
from broadsheet.community.dismissals import dismissed_ids
from broadsheet.community.library import saved_paper_ids
from broadsheet.community.votes import voted_papers
from broadsheet.digest.subscriptions import has_subscription, mail_is_configured
from broadsheet.web.auth import current_member


def render(request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
    templates = request.app.state.templates
    context.setdefault("member", current_member(request))
    context.setdefault("voted", set())
    context.setdefault("saved", getattr(request.state, "saved", set()))
    context.setdefault("dismissed", getattr(request.state, "dismissed", set()))
    context.update(_digest_frame(request, context["member"]))
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
    context.setdefault("voted", set())
    context.setdefault("saved", getattr(request.state, "saved", set()))
    context.setdefault("dismissed", getattr(request.state, "dismissed", set()))
    html = request.app.state.templates.get_template(template).render(request=request, **context)
    return Markup(html)


def voted_for(request: Request, paper_ids: Iterable[str]) -> set[str]:
    """Which of the shown papers the signed-in member upvotes (and, for the page's save and
    👎 buttons, which are in their library and which they dismissed)."""
    member = current_member(request)
    if member is None:
        return set()
    ids = list(paper_ids)
    with request.app.state.engine.connect() as connection:
        # the same cards show the save buttons: which are in the member's library
        request.state.saved = saved_paper_ids(connection, member, ids)
        request.state.dismissed = dismissed_ids(connection, member, ids)
        return voted_papers(connection, member, ids)


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"
