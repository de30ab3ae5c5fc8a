"""Absolute links to this site, for documents read away from it (Atom feeds, citations)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request

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
