"""Which importer reads a file: by its first readable record, or as the user says."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import orjson

from broadsheet.sources import arxiv_snapshot, beir, daily_papers
from broadsheet.sources.base import open_binary, read_lines

FORMATS: dict[str, ModuleType] = {m.FORMAT: m for m in (daily_papers, arxiv_snapshot, beir)}


class UnknownFormat(ValueError):
    pass


# Lines looked at for a record that tells the format: a bad first record should be reported
# by the importer, with its line, rather than hide the format of the file.
LINES_TO_DETECT = 16


def detect_format(path: Path) -> str:
    if daily_papers.first_byte(path) == b"[":  # a JSON array, which may be all on one line
        return daily_papers.FORMAT
    with open_binary(path) as handle:
        seen = 0
        for line, _ in read_lines(handle):
            if line is not None and not line.strip():
                continue
            try:  # a line longer than any record (None) tells nothing
                first = orjson.loads(line) if line is not None else None
            except orjson.JSONDecodeError:
                first = None
            if isinstance(first, dict):
                if "paper" in first:
                    return daily_papers.FORMAT
                if "_id" in first:
                    return beir.FORMAT
                if "id" in first and ("abstract" in first or "versions" in first):
                    return arxiv_snapshot.FORMAT
            seen += 1
            if seen == LINES_TO_DETECT:
                break
    raise UnknownFormat(
        f"{path}: cannot tell the format from its first records; pass --format "
        f"({', '.join(FORMATS)})"
    )
