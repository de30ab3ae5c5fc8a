"""A BEIR ``corpus.jsonl``: ``{"_id", "title", "text"}`` per line.

Documents are stored under ``<corpus>:<_id>`` (``scifact:4983``), the corpus named after the
folder holding the file, so they never collide with arXiv ids.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from broadsheet.papers.record import Paper
from broadsheet.papers.text import drop_control_characters
from broadsheet.sources.base import FieldError, Parsed, optional_str, read_json_lines

FORMAT = "beir"
SOURCE = "beir"
_NAME = re.compile(r"[^a-z0-9_-]+")


def corpus_name(path: Path) -> str:
    return _NAME.sub("-", path.resolve().parent.name.lower()).strip("-") or "beir"


def paper_id(corpus: str, doc_id: str) -> str:
    return f"{corpus}:{doc_id}"


def doc_id(paper_id: str) -> str:
    """The BEIR ``_id`` back from a stored paper id."""
    return paper_id.split(":", 1)[1]


def parse_document(record: dict[str, Any], corpus: str) -> Paper:
    raw_id = record.get("_id")
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)
    if not isinstance(raw_id, str) or not raw_id.strip():
        raise FieldError("_id", "missing" if raw_id is None else "expected non-empty text")
    if drop_control_characters(raw_id) != raw_id:  # ids go into links and feeds as they are
        raise FieldError("_id", f"{raw_id!r} holds a control character")
    text = optional_str(record, "text") or ""
    title = optional_str(record, "title") or ""
    if not text and not title:
        raise FieldError("text", "missing (a document needs a title or a text)")
    return Paper(
        id=paper_id(corpus, raw_id.strip()), title_raw=title, abstract_raw=text, source=SOURCE
    )


def read(
    path: Path,
    start_offset: int = 0,
    start_line: int = 0,
    position: Callable[[int], None] | None = None,
    corpus: str | None = None,
) -> Iterator[Parsed]:
    parse = partial(parse_document, corpus=corpus or corpus_name(path))
    return read_json_lines(path, parse, start_offset, start_line, position)
