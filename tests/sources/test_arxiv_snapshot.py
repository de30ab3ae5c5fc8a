"""The arXiv metadata snapshot (JSON lines)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from broadsheet.sources import arxiv_snapshot


def test_reads_every_field(fixtures: Path) -> None:
    items = list(arxiv_snapshot.read(fixtures / "arxiv_snapshot" / "good.jsonl"))
    assert [i.error for i in items] == [None, None, None]
    paper = items[0].paper
    assert (paper.id, paper.version) == ("0704.0001", 2)
    assert paper.authors == ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C. -P. Yuan"]
    assert paper.published_at == datetime(2007, 4, 2, 19, 18, 42)
    assert paper.updated_at == datetime(2007, 7, 24, 20, 10, 27)
    assert paper.categories == ["hep-ph"]
    assert paper.doi == "10.1103/PhysRevD.76.013009"
    assert paper.journal_ref == "Phys.Rev.D76:013009,2007"
    assert paper.report_no == "ANL-HEP-PR-07-12"
    assert paper.comment == "37 pages, 15 figures; published version"
    assert paper.abstract_raw.startswith("  A fully differential")  # raw, untouched
    assert paper.feed is None
    old = items[1].paper
    assert old.id == "math/0309136"
    assert old.authors == ['J. M\\"uller', "A. Smith"]  # no authors_parsed: split the string
    assert old.categories == ["math.GT", "math.AT"]


def test_offsets_resume_exactly(fixtures: Path) -> None:
    path = fixtures / "arxiv_snapshot" / "good.jsonl"
    items = list(arxiv_snapshot.read(path))
    resumed = list(arxiv_snapshot.read(path, items[0].resume_at, items[0].line))
    assert [i.paper.id for i in resumed] == [i.paper.id for i in items[1:]]
    assert [i.line for i in resumed] == [2, 3]


def test_malformed_lines_name_file_line_and_field(fixtures: Path) -> None:
    path = fixtures / "arxiv_snapshot" / "malformed.jsonl"
    items = list(arxiv_snapshot.read(path))
    assert [i.paper.id for i in items if i.paper] == ["0704.0001", "math/0309136"]
    errors = {i.line: str(i.error) for i in items if i.error}
    assert errors[2].startswith(f"{path}:2: not valid JSON")
    assert errors[3].startswith(f"{path}:3: field 'id': '1234' is not an arXiv id")
    assert errors[4] == f"{path}:4: field 'title': missing"
    assert errors[5].startswith(f"{path}:5: field 'versions': expected a list")
    assert errors[6] == f"{path}:6: expected a JSON object, got list"
