"""The ``broadsheet`` command end to end (in-process via typer's runner)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from broadsheet.cli import app


def test_import_then_stats(cli: CliRunner, fixtures: Path) -> None:
    result = cli.invoke(app, ["import", str(fixtures / "daily_papers" / "good.json")])
    assert result.exit_code == 0, result.output
    assert "added" in result.output and "3" in result.output
    result = cli.invoke(app, ["stats"])
    assert result.exit_code == 0, result.output
    assert "papers" in result.output
    assert "feed entries" in result.output and "3 on 2 days" in result.output
    assert "cartesia-ai" not in result.output  # stats lists counts, not names
    assert "organisations" in result.output


def test_bad_record_aborts_with_location(cli: CliRunner, fixtures: Path) -> None:
    path = fixtures / "arxiv_snapshot" / "malformed.jsonl"
    result = cli.invoke(app, ["import", str(path)])
    assert result.exit_code == 1
    assert f"{path}:2: not valid JSON" in result.output
    assert "--on-error skip" in result.output


def test_skip_reports_errors_and_exits_nonzero(cli: CliRunner, fixtures: Path) -> None:
    result = cli.invoke(
        app, ["import", "--on-error", "skip", str(fixtures / "arxiv_snapshot" / "malformed.jsonl")]
    )
    assert result.exit_code == 1
    assert ":4: field 'title': missing" in result.output


def test_unknown_format_option(cli: CliRunner, fixtures: Path) -> None:
    result = cli.invoke(
        app, ["import", "--format", "csv", str(fixtures / "daily_papers" / "good.json")]
    )
    assert result.exit_code != 0
    assert "unknown format" in result.output


def test_missing_file(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(app, ["import", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
