"""The daily-papers JSON API shape: ``[{"paper": {...}, "title", "publishedAt"}, ...]``.

Accepts a JSON array (the API response) or JSON lines of the same entries. ``paper.id`` is the
arXiv id; each entry also puts the paper on the feed on the day of its ``publishedAt``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from broadsheet.papers.dates import parse_datetime
from broadsheet.papers.ids import InvalidArxivId, parse_arxiv_id
from broadsheet.papers.record import FeedPlacement, Organisation, Paper
from broadsheet.papers.text import drop_control_characters
from broadsheet.sources.base import (
    FieldError,
    Parsed,
    open_binary,
    optional_str,
    read_json_array,
    read_json_lines,
    require,
    require_str,
    whole_number,
)

FORMAT = "daily-papers"
SOURCE = "daily_papers"
_SLUG = re.compile(r"[^a-z0-9]+")


def _date(obj: dict[str, Any], name: str, prefix: str):
    value = optional_str(obj, name, prefix)
    if value is None:
        return None
    try:
        return parse_datetime(value)
    except ValueError as exc:
        raise FieldError(prefix + name, str(exc)) from exc


def _organisation(paper: dict[str, Any]) -> Organisation | None:
    org = paper.get("organization") or paper.get("organisation")
    if not org:
        return None
    if not isinstance(org, dict):
        raise FieldError("paper.organization", "expected an object with name and fullname")
    name = drop_control_characters(optional_str(org, "name", "paper.organization.") or "")
    if not name:
        raise FieldError("paper.organization.name", "missing")
    slug = _SLUG.sub("-", name.lower()).strip("-") or name
    return Organisation(
        slug=slug, name=name, full_name=optional_str(org, "fullname", "paper.organization.")
    )


def _submitter(obj: dict[str, Any], name: str) -> str | None:
    submitter = obj.get(name)
    if not isinstance(submitter, dict):
        return None
    return optional_str(submitter, "user", f"{name}.")


def parse_entry(entry: dict[str, Any]) -> Paper:
    paper = require(entry, "paper")
    if not isinstance(paper, dict):
        raise FieldError("paper", "expected an object")
    raw_id = require_str(paper, "id", "paper.")
    try:
        arxiv_id = parse_arxiv_id(raw_id)
    except InvalidArxivId as exc:
        raise FieldError("paper.id", str(exc)) from exc
    title = optional_str(paper, "title", "paper.") or require_str(entry, "title")
    abstract = paper.get("summary") or ""
    if not isinstance(abstract, str):
        raise FieldError("paper.summary", "expected text")
    raw_authors = paper.get("authors") or []
    if not isinstance(raw_authors, list):
        raise FieldError("paper.authors", "expected a list")
    author_names = []
    for i, author in enumerate(raw_authors):
        name = author.get("name") if isinstance(author, dict) else author
        if not isinstance(name, str):
            raise FieldError(f"paper.authors[{i}].name", "expected text")
        author_names.append(name)
    upvotes = whole_number(paper, "upvotes", "paper.")
    published = _date(paper, "publishedAt", "paper.")
    featured = _date(entry, "publishedAt", "") or published
    if featured is None:
        raise FieldError("publishedAt", "missing (needed to place the paper on the feed)")
    links = {}
    if repo := optional_str(paper, "githubRepo", "paper."):
        links["code"] = repo
    if page := optional_str(paper, "projectPage", "paper."):
        links["project"] = page
    submitted_by = _submitter(entry, "submittedBy") or _submitter(paper, "submittedOnDailyBy")
    return Paper(
        id=arxiv_id.id,
        version=arxiv_id.version,
        title_raw=title,
        abstract_raw=abstract,
        source=SOURCE,
        authors=author_names,
        organisation=_organisation(paper),
        published_at=published,
        links=links,
        upvotes=upvotes,
        feed=FeedPlacement(day=featured.date(), source=SOURCE, submitted_by=submitted_by),
    )


def first_byte(path: Path) -> bytes:
    """The first byte of ``path`` that is not whitespace (``[``: a JSON array)."""
    with open_binary(path) as handle:
        while chunk := handle.read(1):
            if not chunk.isspace():
                return chunk
    return b""


def read(
    path: Path,
    start_offset: int = 0,
    start_line: int = 0,
    position: Callable[[int], None] | None = None,
) -> Iterator[Parsed]:
    """Records from a JSON array (resume by record index) or JSON lines (by byte offset)."""
    if first_byte(path) != b"[":
        yield from read_json_lines(path, parse_entry, start_offset, start_line, position)
        return
    yield from read_json_array(path, parse_entry, start_offset, position)
