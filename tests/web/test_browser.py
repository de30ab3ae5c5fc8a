"""The pages in a real browser (Debian's Chromium through Playwright), with screenshots.

Screenshots go to ``test-artifacts/browser/`` at the repository root.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import Engine

from broadsheet.config import Settings
from broadsheet.ingest.runner import import_file
from broadsheet.web.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (.ci/run installs it with apt)"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def live_server(store: Engine, database_url: str, daily_papers_file) -> Iterator[str]:
    import_file(store, daily_papers_file)
    app = create_app(Settings(database_url=database_url, secret_key="browser-test"))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def page(live_server: str, request: pytest.FixtureRequest):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless"]
        )
        context = browser.new_context(base_url=live_server, viewport={"width": 1100, "height": 900})
        tab = context.new_page()
        yield tab
        tab.screenshot(path=ARTIFACTS / f"{request.node.name}.png", full_page=True)
        browser.close()


def test_daily_page_tabs_and_infinite_scroll(page) -> None:
    page.goto("/?date=2024-01-10&period=weekly&sort=top")
    assert page.locator("h1").inner_text() == "Week of January 8, 2024"
    assert page.locator("article.card").count() == 30
    page.locator("div.more").scroll_into_view_if_needed()
    page.wait_for_function("document.querySelectorAll('article.card').length > 30")
    page.get_by_role("link", name="Monthly").click()
    assert page.locator("h1").inner_text() == "January 2024"
    page.get_by_role("link", name="← Previous").click()
    assert page.locator("h1").inner_text() == "December 2023"


def test_search_and_open_a_result(page) -> None:
    page.goto("/")
    page.get_by_role("searchbox", name="Search papers").fill("pipeline parallelism")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search?q=pipeline+parallelism")
    first = page.locator("article.card h2 a").first
    assert "mark" in first.inner_html()
    first.click()
    page.wait_for_url("**/papers/**")
    assert page.locator("h1").inner_text() == "Zero Bubble Pipeline Parallelism"


def test_subscribe_from_the_banner(page) -> None:
    page.goto("/")
    page.get_by_placeholder("you@example.org").fill("reader@example.org")
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_url("**/subscribe")
    assert "reader@example.org is on the list" in page.locator("p.notice").inner_text()


def test_phone_width_keeps_cards_readable(page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/")
    card = page.locator("article.card").first
    assert card.bounding_box()["width"] <= 390
    overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert not overflow
