"""A stored paper as plain JSON-ready data (CLI ``--json`` and the JSON API share it)."""

from __future__ import annotations

from typing import Any

from broadsheet.papers.ids import abs_url, is_arxiv_id, pdf_url


def paper_json(row: dict[str, Any]) -> dict[str, Any]:
    arxiv = is_arxiv_id(row["id"])
    organisation = None
    if row.get("organisation_slug"):
        organisation = {
            "name": row["organisation_name"],
            "slug": row["organisation_slug"],
            "fullname": row.get("organisation_full_name"),
        }
    return {
        "id": row["id"],
        "version": row.get("version"),
        "title": row["title"],
        "summary": row["abstract"],
        "authors": [{"name": name} for name in row["authors"]],
        "publishedAt": row["published_at"].isoformat() + "Z" if row.get("published_at") else None,
        "upvotes": row["upvotes"],
        "categories": row["categories"].split() if row.get("categories") else [],
        "organization": organisation,
        "links": {
            **({"abs": abs_url(row["id"]), "pdf": pdf_url(row["id"])} if arxiv else {}),
            **(row.get("links") or {}),
        },
    }
