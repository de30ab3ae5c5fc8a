"""Our own source carries no unfinished work; third-party builds stay out of it, as published.

``src/`` holds only our code. Third-party front-end builds (htmx, Swagger UI) sit in
``vendor/`` (the ``broadsheet_vendor`` package): their minified code carries the upstream
libraries' own TODO/FIXME words, and they are never edited, only checked against their
recorded checksums (tests/web/test_docs.py).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
VENDOR = ROOT / "vendor"
MARKERS = re.compile(r"\b(TODO|FIXME|XXX|HACK)\b|NotImplementedError|\bstub\b", re.IGNORECASE)
SUFFIXES = {".py", ".html", ".js", ".css", ".mako", ".txt", ".md", ".svg"}


def test_our_own_source_has_no_unfinished_markers() -> None:
    found = []
    files = [p for p in SRC.rglob("*") if p.suffix in SUFFIXES and "egg-info" not in str(p)]
    assert len(files) > 50  # the walk really reads the package
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if MARKERS.search(line):
                found.append(f"{path.relative_to(SRC)}:{number}: {line.strip()[:100]}")
    assert not found, "\n".join(found)


def test_every_vendored_folder_records_where_it_came_from() -> None:
    folders = [p for p in VENDOR.iterdir() if p.is_dir() and p.name != "__pycache__"]
    assert folders
    for folder in folders:
        assert (folder / "LICENSE").exists(), folder.name
    notes = VENDOR / "swagger-ui" / "VERSION.md"
    assert "swagger-ui-dist" in notes.read_text(encoding="utf-8")


def test_every_package_ships() -> None:
    """The package list in pyproject.toml names every folder of our code (it is not found
    automatically: vendor/ is mapped in beside src/)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    packages = {".".join(init.parent.relative_to(SRC).parts) for init in SRC.rglob("__init__.py")}
    assert packages - listed == set(), "add these to [tool.setuptools] packages"
    assert "broadsheet_vendor" in listed


def test_the_site_serves_the_vendored_builds() -> None:
    from broadsheet.web.app import VENDOR as SERVED

    assert SERVED.resolve() == VENDOR.resolve()
    assert (SERVED / "htmx" / "htmx.min.js").exists()


@pytest.mark.parametrize(
    "path",
    [
        "broadsheet.db.secret",
        "data/papers.sqlite3.secret",
        "broadsheet.db.secret.part-42",
        ".env",
        "broadsheet.db-wal",
    ],
)
def test_what_a_first_start_writes_beside_the_store_is_never_committed(path: str) -> None:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run([git, "check-ignore", "-q", "--no-index", path], cwd=ROOT)
    assert ignored.returncode == 0, f"{path} is not git-ignored"


def test_the_package_builds_without_warnings(tmp_path: Path) -> None:
    """What ``pip install`` builds from this checkout, built here from a copy of it."""
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for folder in ("src", "vendor"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    built = subprocess.run(
        [*command, "-w", str(tmp_path / "dist"), "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    said = built.stdout + built.stderr
    assert not re.findall(r".*Warning.*", said), said
    [wheel] = (tmp_path / "dist").glob("broadsheet-*.whl")
    with zipfile.ZipFile(wheel) as shipped:
        names = set(shipped.namelist())
    shipped_files = [
        "broadsheet/web/static/app.css",
        "broadsheet/web/templates/base.html",
        "broadsheet/db/migrations/script.py.mako",
        "broadsheet/db/migrations/versions/0001_initial.py",
        "broadsheet_vendor/htmx/htmx.min.js",
        "broadsheet_vendor/swagger-ui/swagger-ui.css",
    ]
    assert [name for name in shipped_files if name not in names] == []
