"""A member edits and then deletes their comment in a real browser, with screenshots.

One server and one browser serve the whole module (module-scoped fixtures), like the
accessibility tests, so the browser starts once however many tests are added here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from broadsheet.config import Settings
from broadsheet.db.engine import make_engine, migrate
from broadsheet.papers.repository import upsert_papers
from broadsheet.web.app import create_app
from community.conftest import make_paper
from databases import drop_database, new_database_url
from helpers import live_server as running
from web.test_accessibility_browser import AXE
from web.test_browser import ARTIFACTS, CHROMIUM

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (.ci/run installs it with apt)"
)

PAPER = "2401.00001"
_members = list(range(100))  # a new username for each test's member


@pytest.fixture(scope="module")
def comment_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server over a store with a paper to comment on."""
    url = new_database_url(tmp_path_factory.mktemp("comments"), migrated=True)
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as connection:
        upsert_papers(connection, [make_paper(PAPER)])
    with running(create_app(Settings(database_url=url, secret_key="comment-test"))) as site:
        yield site
    engine.dispose()
    drop_database(url)


@pytest.fixture(scope="module")
def comment_browser(comment_site: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless"]
        )
        yield browser
        browser.close()


@pytest.fixture
def member_tab(comment_browser: Browser, comment_site: str) -> Iterator[Page]:
    """A fresh member, signed up in their own context; script errors and refusals by the
    Content-Security-Policy fail the test (a 422 answer to a refused edit is expected)."""
    context = comment_browser.new_context(
        base_url=comment_site, viewport={"width": 1100, "height": 900}
    )
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.on(
        "console",
        lambda message: problems.append(message.text) if "Refused" in message.text else None,
    )
    tab.goto("/signup")
    tab.get_by_label("Username").fill(f"member{_members.pop()}")
    tab.get_by_label("Password").fill("a long enough password")
    tab.get_by_role("button", name="Sign up").click()
    tab.wait_for_url("**/")
    yield tab
    context.close()
    assert problems == []


def test_a_member_edits_then_deletes_their_comment(member_tab: Page) -> None:
    tab = member_tab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.goto(f"/papers/{PAPER}")
    tab.get_by_label("Add a comment").fill("First *draft*")
    tab.get_by_role("button", name="Comment", exact=True).click()
    comment = tab.locator("article.comment").filter(has_text="First draft")
    expect(comment).to_be_visible()
    expect(comment.locator("time").first).to_have_text(
        re.compile(r"^\d{1,2} \w{3} \d{4}, \d\d:\d\d UTC$")
    )

    comment.get_by_role("link", name="Edit comment").click()
    tab.wait_for_url("**/comments/*/edit")
    expect(tab.get_by_role("heading", level=1)).to_have_text("Edit your comment")
    box = tab.get_by_label("Comment text")
    expect(box).to_have_value("First *draft*")
    box.fill("   ")
    tab.evaluate("document.querySelector('#comment-body').removeAttribute('required')")
    tab.get_by_role("button", name="Save changes").click()
    expect(tab.get_by_role("alert")).to_contain_text("Comment text is empty")
    tab.screenshot(path=ARTIFACTS / "comment-edit-refused.png", full_page=True)
    tab.get_by_label("Comment text").fill("Second **draft**")
    tab.get_by_role("button", name="Save changes").click()
    tab.wait_for_url(f"**/papers/{PAPER}#comment-*")
    edited = tab.locator("article.comment").filter(has_text="Second draft")
    expect(edited.locator("strong")).to_have_text("draft")
    expect(edited).to_contain_text("edited")
    tab.screenshot(path=ARTIFACTS / "comment-edited.png", full_page=True)

    edited.locator("summary", has_text="Delete").click()
    edited.get_by_role("button", name="Delete this comment for good").click()
    tab.wait_for_url(f"**/papers/{PAPER}#comments")
    expect(tab.locator("article.comment")).to_have_count(0)
    expect(tab.get_by_text("No comments yet.")).to_be_visible()
    tab.screenshot(path=ARTIFACTS / "comment-deleted.png", full_page=True)


def test_the_comment_controls_and_edit_page_pass_axe(
    member_tab: Page, comment_browser: Browser, comment_site: str
) -> None:
    tab = member_tab
    tab.goto(f"/papers/{PAPER}")
    tab.get_by_label("Add a comment").fill("Worth a look")
    tab.get_by_role("button", name="Comment", exact=True).click()
    expect(tab.locator("article.comment")).to_have_count(1)
    edit_path = tab.get_by_role("link", name="Edit comment").get_attribute("href")
    # scripts may be injected only in a context that bypasses the site's policy
    checking = comment_browser.new_context(
        base_url=comment_site, bypass_csp=True, storage_state=tab.context.storage_state()
    )
    try:
        page = checking.new_page()
        for path in (f"/papers/{PAPER}", edit_path):
            page.goto(path)
            page.add_script_tag(content=AXE.read_text())
            found = page.evaluate(
                "async () => (await axe.run(document)).violations.map(v => "
                "`${v.id} (${v.impact}): ${v.help} at ${v.nodes.map(n => n.target).join(' | ')}`)"
            )
            assert found == [], "\n".join(found)
    finally:
        checking.close()


def test_a_double_clicked_delete_sends_one_request(member_tab: Page) -> None:
    tab = member_tab
    tab.goto(f"/papers/{PAPER}")
    tab.get_by_label("Add a comment").fill("Clicked twice")
    tab.get_by_role("button", name="Comment", exact=True).click()
    comment = tab.locator("article.comment").filter(has_text="Clicked twice")
    expect(comment).to_be_visible()
    deletes: list[int] = []
    tab.on(
        "request",
        lambda request: deletes.append(1) if request.url.endswith("/delete") else None,
    )
    comment.locator("summary", has_text="Delete").click()
    comment.get_by_role("button", name="Delete this comment for good").dblclick()
    tab.wait_for_url(f"**/papers/{PAPER}#comments")
    expect(tab.get_by_role("alert")).to_have_count(0)
    expect(tab.locator("article.comment").filter(has_text="Clicked twice")).to_have_count(0)
    assert len(deletes) == 1


def test_a_blank_comment_is_refused_next_to_the_form(member_tab: Page) -> None:
    tab = member_tab
    tab.goto(f"/papers/{PAPER}")
    field = tab.get_by_label("Add a comment")
    field.fill("   ")  # passes `required`, and the server refuses it
    tab.get_by_role("button", name="Comment", exact=True).click()
    alert = tab.locator("#comment-form [role=alert]")
    expect(alert).to_have_text("Comment text is empty: a comment needs some text.")
    expect(alert).to_be_in_viewport()
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_value("   ")
    expect(field).to_be_focused()
    expect(tab.locator("#status-line")).to_be_hidden()
    tab.screenshot(path=str(ARTIFACTS / "comment-refused.png"))

    field.fill("Now with words")
    tab.get_by_role("button", name="Comment", exact=True).click()
    expect(tab.locator("article.comment").filter(has_text="Now with words")).to_be_visible()
    expect(alert).to_have_count(0)
    expect(field).not_to_have_attribute("aria-invalid", "true")
    expect(field).to_have_value("")
