"""Voting and saving on the library, a collection and its shared page in a real browser: each
button shows the member's own state, a click changes only what it names, and a reload shows
the same (axe-core finds nothing on the three pages)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from sqlalchemy import Engine

from broadsheet.config import Settings
from broadsheet.papers.repository import upsert_papers
from broadsheet.web.app import create_app
from helpers import live_server as running
from web.test_accessibility_browser import AXE
from web.test_browser import ARTIFACTS, CHROMIUM
from web.test_library import IDS, _paper

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (.ci/run installs it with apt)"
)


@pytest.fixture
def browser_site(store: Engine, database_url: str) -> Iterator[str]:
    with store.begin() as connection:
        upsert_papers(
            connection,
            [
                _paper(IDS[0], "Graph networks over-smooth"),
                _paper(IDS[1], "Diffusion for video"),
                _paper(IDS[2], "Strings and branes"),
            ],
        )
    with running(create_app(Settings(database_url=database_url, secret_key="library"))) as url:
        yield url


@pytest.fixture
def browser(browser_site: str) -> Iterator:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless"]
        )
        yield launched
        launched.close()


def card(page: Page, paper_id: str):
    return page.locator(f"[id='paper-{paper_id.replace('/', '-')}']")


def pressed(page: Page, paper_id: str, button: str, state: bool) -> None:
    expect(card(page, paper_id).locator(button)).to_have_attribute(
        "aria-pressed", "true" if state else "false"
    )


def click_then_reload(page: Page, paper_id: str, button: str, state: bool) -> None:
    """Click the card's button: it shows ``state`` in place, and again after a reload."""
    card(page, paper_id).locator(button).click()
    pressed(page, paper_id, button, state)
    page.reload()
    pressed(page, paper_id, button, state)


def no_axe_violations(browser, browser_site: str, member: dict, path: str, name: str) -> None:
    context = browser.new_context(base_url=browser_site, bypass_csp=True, storage_state=member)
    tab = context.new_page()
    try:
        tab.goto(path)
        tab.add_script_tag(content=AXE.read_text())
        found = tab.evaluate(
            "async () => (await axe.run(document)).violations.map(v => "
            "`${v.id} (${v.impact}): ${v.help} at ${v.nodes.map(n => n.target).join(' | ')}`)"
        )
        tab.screenshot(path=ARTIFACTS / f"library-{name}.png", full_page=True)
        assert found == [], "\n".join(found)
    finally:
        context.close()


def test_votes_and_saves_hold_on_library_collection_and_shared_pages(
    browser, browser_site: str
) -> None:
    context = browser.new_context(base_url=browser_site, viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.goto("/signup")
    page.get_by_label("Username").fill("reader")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/")
    click_then_reload(page, IDS[2], ".save-button", True)  # saved from the feed

    page.goto("/library")
    page.locator("summary", has_text="New collection").click()
    page.get_by_label("Name").fill("Reading group")
    page.get_by_label("Who sees it").select_option("link")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url("**/library?collection=*")
    collection = page.url.removeprefix(browser_site)
    for paper_id in IDS[:2]:
        page.goto(f"/papers/{paper_id}")
        page.locator("#save summary").click()
        page.locator("#save").get_by_label("Reading group").check()
        page.locator("#save").get_by_role("button", name="Save").click()
        page.wait_for_url(f"**/papers/{paper_id}?saved=1#save")
    page.goto(collection)
    page.locator("summary", has_text="Collection settings").click()
    shared = page.locator("a[href^='/c/']").first.get_attribute("href")

    page.goto("/library")  # every paper saved; none voted yet
    for paper_id in IDS:
        pressed(page, paper_id, ".save-button", True)
    pressed(page, IDS[0], ".upvote", False)
    click_then_reload(page, IDS[0], ".upvote", True)

    page.goto(collection)  # the vote made on the library shows here
    pressed(page, IDS[0], ".upvote", True)
    pressed(page, IDS[1], ".save-button", True)
    click_then_reload(page, IDS[1], ".dismiss-button", True)
    click_then_reload(page, IDS[0], ".upvote", False)  # a click on a pressed ▲ withdraws it
    click_then_reload(page, IDS[0], ".upvote", True)

    page.goto(shared)  # the member's own marks on the page they share
    pressed(page, IDS[0], ".upvote", True)
    pressed(page, IDS[1], ".dismiss-button", True)
    pressed(page, IDS[1], ".save-button", True)
    click_then_reload(page, IDS[1], ".upvote", True)
    card(page, IDS[1]).locator(".save-button").click()  # unsaved: out of the collection too
    pressed(page, IDS[1], ".save-button", False)
    page.reload()
    expect(card(page, IDS[1])).to_have_count(0)
    expect(page.locator("p.meta").first).to_contain_text("1 paper ·")

    member = context.storage_state()
    context.close()
    for path, name in (("/library", "all"), (collection, "collection"), (shared, "shared")):
        no_axe_violations(browser, browser_site, member, path, name)
