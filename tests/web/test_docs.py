"""The API docs at /docs: Swagger UI served from the package, so they work offline."""

from __future__ import annotations

import hashlib
import re
import tomllib
from fnmatch import fnmatch
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from broadsheet.config import Settings
from broadsheet.web.app import create_app
from broadsheet.web.security import CONTENT_SECURITY_POLICY

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "broadsheet"
SWAGGER_UI = ROOT / "vendor" / "swagger-ui"


class References(HTMLParser):
    """Every URL a page names in src or href, with the tag that names it."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [(tag, value or "") for name, value in attrs if name in {"src", "href"}]


def references(html: str) -> list[tuple[str, str]]:
    parser = References()
    parser.feed(html)
    return parser.urls


def directives(policy: str) -> dict[str, list[str]]:
    parts = (part.split() for part in policy.split(";") if part.strip())
    return {name: values for name, *values in parts}


@pytest.fixture
def site(store, database_url: str) -> TestClient:
    return TestClient(create_app(Settings(database_url=database_url, secret_key="test")))


def test_docs_load_their_scripts_and_styles_from_this_site(site: TestClient) -> None:
    response = site.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    urls = references(response.text)
    assets = [url for tag, url in urls if tag in {"script", "link"}]
    assert any(url.endswith("swagger-ui-bundle.js") for url in assets)
    assert any(url.endswith("swagger-ui.css") for url in assets)
    assert all(url.startswith("/static/") for url in assets), assets
    assert all(url.startswith("/") and not url.startswith("//") for _, url in urls), urls
    assert "http://" not in response.text and "https://" not in response.text
    for url in assets:  # each one is there to load
        asset = site.get(url)
        assert asset.status_code == 200, url
        kind = asset.headers["content-type"].split(";")[0]
        assert kind in {"text/javascript", "text/css", "image/svg+xml"}, url


def test_docs_start_swagger_ui_on_this_sites_openapi(site: TestClient) -> None:
    page = site.get("/docs").text
    assert 'id="swagger-ui"' in page
    assert f'data-openapi-url="{site.app.openapi_url}"' in page
    start = site.get("/static/swagger-init.js").text
    assert "SwaggerUIBundle(" in start
    assert "validatorUrl: null" in start  # the validator badge would load from swagger.io
    spec = site.get("/openapi.json")
    assert spec.status_code == 200 and "/api/papers/search" in spec.json()["paths"]
    assert site.get("/redoc").status_code == 404


def test_docs_run_under_the_sites_own_policy(site: TestClient) -> None:
    """No other host, no hashes, no inline script or style: the policy of every other page."""
    response = site.get("/docs")
    policy = response.headers["Content-Security-Policy"]
    assert policy == CONTENT_SECURITY_POLICY == site.get("/").headers["Content-Security-Policy"]
    assert "http" not in policy and "*" not in policy
    rules = directives(policy)
    assert rules["script-src"] == ["'self'"]
    assert rules["style-src"] == ["'self'"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "<script>" not in response.text and "<style" not in response.text


def vendored_note() -> dict[str, str]:
    """The vendored copy's note: its version, where it came from and each file's sha256."""
    text = (SWAGGER_UI / "VERSION.md").read_text()
    sums = dict(
        (name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", text, re.M)
    )
    version = re.search(r"swagger-ui-dist@(\d+\.\d+\.\d+)", text)
    assert version, "the note names the version"
    return {"version": version.group(1), **sums}


def test_vendored_swagger_ui_matches_its_note() -> None:
    note = vendored_note()
    files = {path.name for path in SWAGGER_UI.iterdir()} - {"VERSION.md"}
    assert {"swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "NOTICE"} <= files
    for name in files:  # each file unchanged from the named release, and none unaccounted for
        digest = hashlib.sha256((SWAGGER_UI / name).read_bytes()).hexdigest()
        assert note.get(name) == digest, name
    bundle = (SWAGGER_UI / "swagger-ui-bundle.js").read_text()
    assert f'PACKAGE_VERSION:"{note["version"]}"' in bundle


def _package_folder(package: str, package_dir: dict[str, str]) -> Path:
    """Where setuptools reads ``package`` from, by ``[tool.setuptools] package-dir``."""
    parts = package.split(".")
    for cut in range(len(parts), 0, -1):
        if (mapped := package_dir.get(".".join(parts[:cut]))) is not None:
            return ROOT / mapped / Path(*parts[cut:])
    return ROOT / package_dir.get("", "") / Path(*parts)


def test_every_static_file_ships_with_the_package() -> None:
    """An installed copy serves the same files as a checkout: each lies in a listed package
    whose package-data names it."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_data = setuptools["package-data"]
    folders = {p: _package_folder(p, setuptools["package-dir"]) for p in setuptools["packages"]}
    roots = [
        PACKAGE / "web" / "static",
        PACKAGE / "web" / "templates",
        PACKAGE / "db",
        ROOT / "vendor",
    ]
    missing = []
    for root in roots:
        files = [
            path
            for path in root.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".py"
        ]
        assert files, root
        for path in files:
            owners = [p for p, folder in folders.items() if path.is_relative_to(folder)]
            assert owners, f"{path} lies in no listed package"
            owner = max(owners, key=lambda p: len(folders[p].parts))  # the innermost
            name = path.relative_to(folders[owner]).as_posix()
            if not any(
                fnmatch(name, pattern) and name.count("/") == pattern.count("/")
                for pattern in package_data.get(owner, [])
            ):
                missing.append(f"{owner}: {name}")
    assert any("swagger-ui" in name for name in package_data["broadsheet_vendor"])
    assert not missing, missing
