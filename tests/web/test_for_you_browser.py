""" "For you" and 👎 in a real browser, on the shared daily papers (a part of them embedded)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect, sync_playwright
from sqlalchemy import Engine

from broadsheet.config import Settings
from broadsheet.web.app import create_app
from daily_store import TOPIC
from feed.test_for_you import _embedded
from helpers import live_server as running
from web.test_browser import ARTIFACTS, CHROMIUM

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (.ci/run installs it with apt)"
)


@pytest.fixture
def page(daily_store: Engine, request: pytest.FixtureRequest) -> Iterator:
    url = daily_store.url.render_as_string(hide_password=False)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    app = create_app(Settings(database_url=url, secret_key="for-you-test"))
    with running(app) as site, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless"]
        )
        context = browser.new_context(base_url=site, viewport={"width": 1100, "height": 900})
        tab = context.new_page()
        yield tab
        tab.screenshot(path=ARTIFACTS / f"{request.node.name}.png", full_page=True)
        browser.close()


def test_saves_make_picks_and_not_interested_removes_one(page, daily_store: Engine) -> None:
    page.goto("/signup")
    page.get_by_label("Username").fill("reader")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/")
    page.locator("nav.account").get_by_role("link", name="For you").click()
    expect(page.locator(".notice")).to_contain_text("Upvote or save a few papers")

    for paper_id in _embedded(daily_store, TOPIC)[:3]:
        page.goto(f"/papers/{paper_id}")
        page.locator("#save summary").click()
        page.locator("#save").get_by_role("button", name="Save").click()
        page.wait_for_url(f"**/papers/{paper_id}?saved=1#save")

    page.locator("nav.account").get_by_role("link", name="For you").click()
    cards = page.locator("article.card")
    expect(cards).to_have_count(20)
    expect(page.locator(".because").first).to_contain_text("you saved")
    assert TOPIC in cards.first.inner_text().lower()
    page.screenshot(path=ARTIFACTS / "for-you.png", full_page=True)

    first = cards.first
    first_id = first.get_attribute("id")
    same = f"[id='{first_id}']"  # ids hold dots
    page.evaluate("window.notReloaded = true")
    first.locator(".dismiss-button").click()
    expect(page.locator(f"{same} .dismiss-button")).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("window.notReloaded") is True
    page.reload()
    expect(page.locator(same)).to_have_count(0)

    page.get_by_role("link", name="What drives this").click()
    dismissed = page.locator("h2:has-text('Dismissed') + .signal")
    expect(dismissed).to_have_count(1)
    page.screenshot(path=ARTIFACTS / "for-you-signals.png", full_page=True)
    dismissed.get_by_role("button").click()
    page.wait_for_url("**/for-you/signals")
    expect(page.locator("h2:has-text('Dismissed') + p.empty")).to_have_text("None.")
