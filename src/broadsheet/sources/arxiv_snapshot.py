"""The arXiv metadata snapshot: JSON lines with ``id, authors, title, abstract, versions, ...``.

About 2.7 million lines and 4+ GB: read line by line, never whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from broadsheet.papers.dates import parse_datetime
from broadsheet.papers.ids import InvalidArxivId, parse_arxiv_id, parse_version
from broadsheet.papers.record import Paper
from broadsheet.sources.base import (
    FieldError,
    Parsed,
    optional_str,
    read_json_lines,
    require_str,
)

FORMAT = "arxiv-snapshot"
SOURCE = "arxiv_snapshot"


def _all_text(parts: list) -> bool:
    """Whether every item is text (``str.join`` checks them all in C, refusing anything else)."""
    try:
        " ".join(parts)
    except TypeError:
        return False
    return True


def _authors(record: dict[str, Any]) -> list[str]:
    parsed = record.get("authors_parsed")
    if isinstance(parsed, list) and parsed:
        names = []
        for i, parts in enumerate(parsed):
            if not isinstance(parts, list) or not _all_text(parts):
                raise FieldError(f"authors_parsed[{i}]", "expected [last, first, suffix]")
            last, first, suffix = (*parts, "", "", "")[:3]
            names.append(" ".join(filter(None, (first, last, suffix))))
        return names
    raw = optional_str(record, "authors") or ""
    return [n.strip() for n in raw.replace(" and ", ", ").split(",") if n.strip()]


def _version_number(versions: list, i: int) -> int:
    entry = versions[i]
    if not isinstance(entry, dict):
        raise FieldError(f"versions[{i}]", "expected {'version': 'v1', 'created': DATE}")
    value = entry.get("version")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise FieldError(f"versions[{i}].version", f"expected text like v1, got {value!r}")
    try:
        return parse_version(str(value))
    except InvalidArxivId as exc:
        raise FieldError(f"versions[{i}].version", str(exc)) from exc


def _created(versions: list, i: int) -> datetime:
    value = versions[i].get("created")
    if not isinstance(value, str):
        raise FieldError(f"versions[{i}].created", f"expected a date, got {value!r}")
    try:
        return parse_datetime(value)
    except ValueError as exc:
        raise FieldError(f"versions[{i}].created", str(exc)) from exc


def _versions(record: dict[str, Any]) -> tuple[int | None, Any, Any]:
    """The latest version number, and when the first and the last version were made."""
    versions = record.get("versions") or []
    if not isinstance(versions, list):
        raise FieldError("versions", "expected a list")
    if not versions:
        return None, None, None
    latest = max(_version_number(versions, i) for i in range(len(versions)))
    first = _created(versions, 0)
    last = _created(versions, len(versions) - 1) if len(versions) > 1 else first
    return latest, first, last


def _raw_text(record: dict[str, Any], name: str) -> str:
    value = record.get(name) or ""
    if not isinstance(value, str):
        raise FieldError(name, f"expected text, got {type(value).__name__}")
    return value


def parse_record(record: dict[str, Any]) -> Paper:
    raw_id = record.get("id")
    if isinstance(raw_id, float | int) and not isinstance(raw_id, bool):
        raise FieldError("id", f'{raw_id!r} is a number; arXiv ids must be text ("0704.0001")')
    try:
        arxiv_id = parse_arxiv_id(require_str(record, "id"))
    except InvalidArxivId as exc:
        raise FieldError("id", str(exc)) from exc
    version, published, updated = _versions(record)
    if updated is None and (update_date := optional_str(record, "update_date")):
        try:
            updated = parse_datetime(update_date)
        except ValueError as exc:
            raise FieldError("update_date", str(exc)) from exc
    categories = (optional_str(record, "categories") or "").split()
    return Paper(
        id=arxiv_id.id,
        version=version or arxiv_id.version,
        title_raw=require_str(record, "title"),  # raw, as in the source
        abstract_raw=_raw_text(record, "abstract"),
        source=SOURCE,
        authors=_authors(record),
        categories=categories,
        published_at=published,
        updated_at=updated,
        comment=optional_str(record, "comments"),
        doi=optional_str(record, "doi"),
        journal_ref=optional_str(record, "journal-ref"),
        report_no=optional_str(record, "report-no"),
        license=optional_str(record, "license"),
    )


def read(
    path: Path,
    start_offset: int = 0,
    start_line: int = 0,
    position: Callable[[int], None] | None = None,
) -> Iterator[Parsed]:
    return read_json_lines(path, parse_record, start_offset, start_line, position)
