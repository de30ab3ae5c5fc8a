"""Every response carries the security headers; templates hold no inline script to allow."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from broadsheet.config import Settings
from broadsheet.web.app import create_app

TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "broadsheet" / "web" / "templates"


def directives(policy: str) -> dict[str, list[str]]:
    parts = (part.split() for part in policy.split(";") if part.strip())
    return {name: values for name, *values in parts}


@pytest.fixture
def site(store, database_url: str) -> TestClient:
    return TestClient(create_app(Settings(database_url=database_url, secret_key="test")))


@pytest.mark.parametrize(
    "path",
    ["/", "/signin", "/search?q=x", "/static/app.js", "/api/daily_papers", "/missing", "/docs"],
)
def test_every_response_carries_the_headers(site: TestClient, path: str) -> None:
    response = site.get(path)
    policy = directives(response.headers["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval'
    assert policy["style-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers  # plain http: no HSTS


def test_hsts_when_the_public_address_is_https(store, database_url: str) -> None:
    settings = Settings(database_url=database_url, secret_key="t", base_url="https://example.org")
    response = TestClient(create_app(settings), base_url="https://example.org").get("/healthz")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"\s(on[a-z]+|hx-on[:\w-]*)\s*=", re.IGNORECASE)
INLINE_STYLE = re.compile(r"\sstyle\s*=|<style", re.IGNORECASE)


@pytest.mark.parametrize("template", sorted(TEMPLATES.glob("*.html")), ids=lambda p: p.name)
def test_templates_hold_no_inline_script_handler_or_style(template: Path) -> None:
    text = template.read_text()
    assert not INLINE_SCRIPT.search(text)
    assert not INLINE_HANDLER.search(text)
    assert not INLINE_STYLE.search(text)
    assert "javascript:" not in text.lower()


def test_htmx_is_told_not_to_inject_styles_or_evaluate_code(site: TestClient) -> None:
    page = site.get("/signin").text
    config = re.search(r'<meta name="htmx-config" content=\'([^\']+)\'>', page)
    assert config, "htmx reads its settings from a meta tag"
    assert '"includeIndicatorStyles": false' in config.group(1)
    assert '"allowEval": false' in config.group(1)
    assert '"allowScriptTags": false' in config.group(1)
    css = site.get("/static/app.css").text
    assert ".htmx-indicator" in css  # the styles htmx would have injected live here


def test_a_429_without_its_own_retry_after_still_gets_one(site: TestClient) -> None:
    from fastapi.responses import PlainTextResponse

    @site.app.get("/always-429")
    def always_429() -> PlainTextResponse:
        return PlainTextResponse("slow down", status_code=429)

    response = site.get("/always-429")
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
