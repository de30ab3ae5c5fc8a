"""Our own source carries no unfinished work; vendored releases are kept exactly as published.

Files under ``static/vendor/`` are third-party builds (htmx, Swagger UI) whose minified code
holds the upstream libraries' own TODO/FIXME comments; they are never edited, so they are
checked against their recorded checksums (tests/web/test_docs.py) instead of read for markers.
"""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "broadsheet"
VENDOR = SRC / "web" / "static" / "vendor"
MARKERS = re.compile(r"\b(TODO|FIXME|XXX|HACK)\b|NotImplementedError|\bstub\b", re.IGNORECASE)
SUFFIXES = {".py", ".html", ".js", ".css", ".mako"}


def test_our_own_source_has_no_unfinished_markers() -> None:
    found = []
    files = [p for p in SRC.rglob("*") if p.suffix in SUFFIXES and VENDOR not in p.parents]
    assert len(files) > 50  # the walk really reads the package
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if MARKERS.search(line):
                found.append(f"{path.relative_to(SRC)}:{number}: {line.strip()[:100]}")
    assert not found, "\n".join(found)


def test_every_vendored_folder_records_where_it_came_from() -> None:
    folders = [p for p in VENDOR.iterdir() if p.is_dir()]
    assert folders
    for folder in folders:
        assert (folder / "LICENSE").exists(), folder.name
    notes = VENDOR / "swagger-ui" / "VERSION.md"
    assert "swagger-ui-dist" in notes.read_text(encoding="utf-8")
