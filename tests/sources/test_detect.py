from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from broadsheet.sources.detect import UnknownFormat, detect_format


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("daily_papers/good.json", "daily-papers"),
        ("daily_papers/entries.jsonl", "daily-papers"),
        ("arxiv_snapshot/good.jsonl", "arxiv-snapshot"),
        ("beir/minicorpus/corpus.jsonl", "beir"),
    ],
)
def test_detects_each_format(fixtures: Path, relative: str, expected: str) -> None:
    assert detect_format(fixtures / relative) == expected


def test_unknown_format_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "mystery.jsonl"
    path.write_text('{"hello": "world"}\n')
    with pytest.raises(UnknownFormat, match=r"mystery\.jsonl"):
        detect_format(path)


def test_a_bad_first_record_does_not_hide_the_format(tmp_path: Path) -> None:
    """The importer reports the bad record with its line; detection looks past it."""
    path = tmp_path / "corpus.jsonl"
    deep = "[" * 2000 + "]" * 2000
    path.write_text(f'{{"_id": "1", "x": {deep}}}\n{{oops\n{{"_id": "2", "text": "t"}}\n')
    assert detect_format(path) == "beir"


def test_a_json_array_on_one_line_is_told_without_reading_the_line(tmp_path: Path) -> None:
    """The first line of a compact array is the whole file: it was read whole to see its "["."""
    path = tmp_path / "papers.json"
    path.write_text("[" + ",".join(['{"paper": {"id": "2401.00001"}}'] * 600_000) + "]")
    tracemalloc.start()
    try:
        assert detect_format(path) == "daily-papers"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024**2 < path.stat().st_size // 10
