"""A paper as lists show it (feed, organisation, search and similar cards; API lists).

A list is fetched by every visitor, so it carries a bounded preview of each paper whatever
the store holds: a paper with a 10 MB abstract once made its feed day a 10 MB page. The
paper's own page and ``/api/papers/{id}`` carry it whole. The bounds sit far above real
papers (arXiv caps abstracts at 1,920 characters; titles run to ~300), so only an oversized
record is ever cut, and a cut text ends in an ellipsis.
"""

from __future__ import annotations

from typing import Any

CARD_TITLE_CHARS = 1_000
CARD_ABSTRACT_CHARS = 5_000
CARD_AUTHORS = 1_000  # names sent per paper; cards show only the count (``author_count``)
ELLIPSIS = "…"


def clipped(text: str, limit: int) -> str:
    """``text``, or its first ``limit`` characters and an ellipsis when it is longer."""
    return text if len(text) <= limit else text[:limit] + ELLIPSIS


def card(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` (a stored paper) with its title, abstract and authors bounded for a list."""
    authors = row.get("authors") or []
    return {
        **row,
        "title": clipped(row["title"], CARD_TITLE_CHARS),
        "abstract": clipped(row["abstract"], CARD_ABSTRACT_CHARS),
        "authors": authors[:CARD_AUTHORS],
        "author_count": len(authors),
    }
