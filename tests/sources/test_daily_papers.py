"""The daily-papers JSON API shape: arrays and JSON lines, good and malformed records."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from broadsheet.sources import daily_papers


def read_all(path: Path, start: int = 0):
    return list(daily_papers.read(path, start, start))


def test_reads_every_field(fixtures: Path) -> None:
    items = read_all(fixtures / "daily_papers" / "good.json")
    assert [i.error for i in items] == [None, None, None]
    first, mamba, old = (i.paper for i in items)
    assert first.id == "2401.10241" and first.version is None
    assert first.upvotes == 19
    assert first.authors == ["Penghui Qi", "Xinyi Wan", "Min Lin"]
    assert first.published_at == datetime(2023, 11, 30, 10, 40, 34)
    assert first.feed.day == date(2023, 12, 1)
    assert first.links == {"code": "https://github.com/sail-sg/zero-bubble-pipeline-parallelism"}
    assert "\n" in first.abstract_raw  # raw text is kept as it came
    assert (mamba.id, mamba.version) == ("2312.00752", 2)
    assert mamba.organisation.full_name == "Cartesia AI"
    assert old.id == "hep-th/9901001"


def test_resume_skips_records_already_read(fixtures: Path) -> None:
    items = read_all(fixtures / "daily_papers" / "good.json", start=2)
    assert [i.paper.id for i in items] == ["hep-th/9901001"]
    assert items[0].line == 3


def test_malformed_records_name_entry_and_field(fixtures: Path) -> None:
    path = fixtures / "daily_papers" / "malformed.json"
    items = read_all(path)
    assert [i.paper.id for i in items if i.paper] == ["2401.10241", "2401.10243"]
    errors = [str(i.error) for i in items if i.error]
    assert errors[0] == f"{path}: entry 2: field 'paper.id': missing"
    assert errors[1].startswith(
        f"{path}: entry 3: field 'paper.id': 'not-an-id' is not an arXiv id"
    )
    assert errors[2].startswith(f"{path}: entry 4: field 'paper.upvotes'")
    assert errors[3] == f"{path}: entry 5: expected a JSON object, got str"


def test_truncated_array_reports_where_it_broke(fixtures: Path) -> None:
    items = read_all(fixtures / "daily_papers" / "truncated.json")
    assert items[0].paper.id == "2401.10241"
    assert "not valid JSON after entry 1" in str(items[-1].error)


def test_json_lines_variant_reports_line_numbers(fixtures: Path, tmp_path: Path) -> None:
    items = read_all(fixtures / "daily_papers" / "entries.jsonl")
    assert [(i.line, i.paper.id) for i in items] == [(1, "2401.10241"), (3, "2401.10242")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"paper": {"id": "2401.10241"}, "publishedAt": "2024-01-01"}\n{oops\n')
    errors = [str(i.error) for i in read_all(bad) if i.error]
    assert errors[0] == f"{bad}:1: field 'title': missing"
    assert errors[1].startswith(f"{bad}:2: not valid JSON")
