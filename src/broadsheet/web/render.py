"""Rendering pages with what every template needs: the member and their votes."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from broadsheet.community.votes import voted_papers
from broadsheet.web.auth import current_member


def render(request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
    templates = request.app.state.templates
    context.setdefault("member", current_member(request))
    context.setdefault("voted", set())
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def render_fragment(request: Request, template: str, **context) -> Markup:
    """A template rendered to HTML for embedding in a page (or caching)."""
    context.setdefault("member", current_member(request))
    context.setdefault("voted", set())
    html = request.app.state.templates.get_template(template).render(request=request, **context)
    return Markup(html)


def voted_for(request: Request, paper_ids: Iterable[str]) -> set[str]:
    """Which of the shown papers the signed-in member upvotes."""
    member = current_member(request)
    if member is None:
        return set()
    with request.app.state.engine.connect() as connection:
        return voted_papers(connection, member, paper_ids)


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"
