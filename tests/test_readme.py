"""The README tells the truth about the code: every setting is in its table, every command is
named, and what "Operating Broadsheet" shows (commands and their options, pages, settings,
metrics) exists. A change that adds one without documenting it fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.routing import Match
from typer.main import get_command

from broadsheet.cli import app
from broadsheet.config import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def _commands(group, path: tuple[str, ...] = ()) -> dict:
    found: dict = {}
    for name, command in getattr(group, "commands", {}).items():
        if hasattr(command, "commands"):  # a group of commands
            found |= _commands(command, (*path, name))
        else:
            found[" ".join((*path, name))] = command
    return found


COMMANDS = _commands(get_command(app))


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_in_the_settings_table(name: str) -> None:
    table = _section("Settings")
    assert re.search(rf"`{name.upper()}`", table), f"BROADSHEET_{name.upper()} is not documented"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_is_named_in_the_readme(name: str) -> None:
    assert f"broadsheet {name}" in README, f"`broadsheet {name}` is not in the README"


def _command_lines() -> list[str]:
    """Each ``broadsheet …`` command shown in Operating Broadsheet, in code or code blocks."""
    text = _section("Operating Broadsheet")
    first = "|".join(sorted({name.split()[0] for name in COMMANDS}, key=len, reverse=True))
    pattern = rf"broadsheet ((?:{first})(?: [a-z][a-z-]*)?)((?: [^`\n|]*)?)"
    shown = re.findall(pattern, text)
    return [f"{words}{rest}" for words, rest in shown]


def test_operating_broadsheet_shows_only_commands_and_options_that_exist() -> None:
    lines = _command_lines()
    assert len(lines) >= 10, lines
    for line in lines:
        words = line.split()
        if " ".join(words[:2]) in COMMANDS:
            name = " ".join(words[:2])
        elif any(c.startswith(f"{words[0]} ") for c in COMMANDS):  # a group named in prose
            assert "--" not in line, f"`broadsheet {line}`: name the command of {words[0]}"
            continue
        else:
            name = words[0]
        assert name in COMMANDS, f"`broadsheet {line}`: no such command"
        options = {o for p in COMMANDS[name].params for o in (*p.opts, *p.secondary_opts)}
        for option in re.findall(r"(?<![\w-])--[a-z][a-z-]*", line):
            assert option in options, f"`broadsheet {line}`: {name} has no {option}"


def _answers(app, path: str) -> bool:
    """Whether some route of ``app`` answers a GET of ``path``."""
    scope = {"type": "http", "path": path, "method": "GET", "root_path": "",
             "query_string": b"", "headers": []}  # fmt: skip
    return any(route.matches(scope)[0] == Match.FULL for route in app.routes)


def test_operating_broadsheet_names_pages_settings_and_metrics_that_exist() -> None:
    from broadsheet.web.app import create_app

    text = _section("Operating Broadsheet")
    site = create_app(Settings(secret_key="x"))
    assert not _answers(site, "/no-such-page")
    pages = set(re.findall(r"`(/(?:admin[a-z/]*|healthz|readyz))`", text))
    assert {"/admin", "/admin/members", "/healthz", "/readyz"} <= pages
    for page in pages:
        assert _answers(site, page), f"{page} is not a page of the app"
    table_rows = "\n".join(line for line in text.splitlines() if line.startswith("|"))
    named = re.findall(r"BROADSHEET_([A-Z_]+)", text) + re.findall(r"`([A-Z][A-Z_]+)`", table_rows)
    assert "INDEX_EVERY_MINUTES" in named and "METRICS_ENABLED" in named
    for name in named:
        assert name.lower() in Settings.model_fields, f"{name} is not a setting"
    metrics = (ROOT / "src" / "broadsheet" / "metrics.py").read_text()
    for series in re.findall(r"`(broadsheet_[a-z_]+)", text):
        assert series in metrics, f"{series} is not a metric"
