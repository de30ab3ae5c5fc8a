"""Links to this site: absolute ones for documents read away from it (Atom feeds, citations),
and the canonical address of the page a request shows (for links back to it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import Request
from fastapi.dependencies.models import Dependant

from broadsheet.papers.citations import coins


def site_url(request: Request) -> str:
    """The site's address without a trailing slash: BASE_URL when an admin set it, else the
    scheme and host this request reached, so links work wherever the site is served from.

    Behind a proxy listed in FORWARDED_ALLOW_IPS the scheme is the one the visitor used. The
    host comes from the request and may be anything a client sends: put it in documents only
    through an escaping writer (feedgen escapes it as XML).
    """
    settings = request.app.state.settings
    if "base_url" in settings.model_fields_set:
        return settings.base_url.rstrip("/")
    return str(request.base_url).rstrip("/")


def coins_title(paper: Mapping[str, Any], request: Request) -> str:
    """The COinS span's title for a card (a template global)."""
    return coins(paper, site_url(request))


Reader = TypeVar("Reader", bound=Callable[..., Any])


def reads_query(*names: str) -> Callable[[Reader], Reader]:
    """Mark a dependency that reads ``names`` from the query string itself (not as declared
    parameters), so that they count among the parameters of the pages that use it."""

    def mark(reader: Reader) -> Reader:
        reader.query_names = names  # type: ignore[attr-defined]
        return reader

    return mark


def _names_read(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    names.update(getattr(dependant.call, "query_names", ()))
    for dependency in dependant.dependencies:
        names |= _names_read(dependency)
    return names


def page_parameters(request: Request) -> frozenset[str]:
    """The query parameters the page answering ``request`` reads; any other (``utm_source``,
    ``fbclid``) changes nothing on it."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    return frozenset(_names_read(dependant)) if dependant is not None else frozenset()


def here(request: Request) -> str:
    """The canonical address of this page: its path and the parameters it reads, as given.

    Links back to the page (sign in and return) are built from this, never from the raw
    address, so what a visitor adds to it is neither echoed nor cached for other visitors.
    """
    read = page_parameters(request)
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k in read])
    return request.url.path + (f"?{query}" if query else "")
