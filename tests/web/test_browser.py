"""The pages in a real browser (Debian's Chromium through Playwright), with screenshots.

Screenshots go to ``test-artifacts/browser/`` at the repository root.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect, sync_playwright
from sqlalchemy import Engine

from broadsheet.config import Settings
from broadsheet.ingest.runner import import_file
from broadsheet.web.app import create_app
from fake_arxiv import FakeArxiv, fake_arxiv
from helpers import live_server as running
from smtp_sink import SmtpSink

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (.ci/run installs it with apt)"
)


@pytest.fixture
def arxiv() -> Iterator[FakeArxiv]:
    with fake_arxiv() as fake:
        yield fake


@pytest.fixture
def live_server(
    store: Engine, database_url: str, daily_papers_file, arxiv, smtp: SmtpSink
) -> Iterator[str]:
    import_file(store, daily_papers_file)
    settings = Settings(
        database_url=database_url,
        secret_key="browser-test",
        arxiv_api_url=arxiv.url,
        arxiv_api_delay=0.0,
        smtp_host=smtp.host,
        smtp_port=smtp.port,
    )
    with running(create_app(settings)) as url:
        yield url


@pytest.fixture
def page(live_server: str, request: pytest.FixtureRequest):

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
    page.locator("article.card").nth(30).wait_for()  # locators: the policy forbids eval
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


def test_subscribe_from_the_banner(page, smtp: SmtpSink) -> None:
    page.goto("/")
    page.get_by_placeholder("you@example.org").fill("reader@example.org")
    page.get_by_label("How often").select_option("weekly")
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_url("**/subscribe")
    assert "Check your inbox" in page.locator("p.notice").inner_text()
    [mail] = smtp.to("reader@example.org")
    text = mail.get_body(("plain",)).get_content()
    link = urlsplit(re.search(r"http://\S+/subscribe/confirm\?token=\S+", text).group(0))
    page.goto(f"{link.path}?{link.query}")  # the mail's host is the configured base URL
    assert "weekly digest" in page.locator("p.notice").inner_text()


def test_phone_width_keeps_cards_readable(page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/")
    card = page.locator("article.card").first
    assert card.bounding_box()["width"] <= 390
    overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert not overflow


def test_member_signs_up_submits_upvotes_and_comments(page) -> None:
    page.goto("/")
    page.get_by_role("link", name="Sign up").click()
    page.get_by_label("Username").fill("reader")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/")
    assert page.locator("nav.account .who").inner_text() == "reader"

    page.get_by_role("link", name="Submit").click()
    page.get_by_label("arXiv id or URL").fill("https://arxiv.org/abs/2401.00123v1")
    page.get_by_role("button", name="Submit").click()
    page.wait_for_url("**/papers/2401.00123")
    assert page.locator("h1").inner_text() == "Gradient Noise Is All You Need"
    page.screenshot(path=ARTIFACTS / "submitted-paper.png")

    page.evaluate("window.notReloaded = true")  # lost if the page reloads
    vote = page.locator(".paper-head form.vote")
    assert vote.locator(".count").inner_text() == ""
    vote.get_by_role("button").click()
    expect(vote.locator(".count")).to_have_text("1")
    assert vote.get_by_role("button").get_attribute("aria-pressed") == "true"
    assert page.evaluate("window.notReloaded") is True

    page.get_by_label("Add a comment").fill("Worth reading: **section 3** has the proof.")
    page.get_by_role("button", name="Comment").click()
    page.wait_for_selector("article.comment strong")
    assert page.locator("article.comment strong").inner_text() == "section 3"
    assert page.get_by_label("Add a comment").input_value() == ""
    assert page.evaluate("window.notReloaded") is True

    page.goto("/")  # the submission is on today's feed with its vote
    card = page.locator("article.card", has_text="Gradient Noise Is All You Need")
    assert card.locator(".vote .count").inner_text() == "1"
    assert card.locator("a.comments").get_attribute("aria-label") == "1 comment"


def test_upvote_on_the_feed_as_a_visitor_asks_to_sign_in(page) -> None:
    page.goto("/")
    page.locator("article.card .vote a.upvote").first.click()
    page.wait_for_url(re.compile(r"/signin\?next=/"))
    assert page.locator("h1").inner_text() == "Sign in"


CSP_WATCH = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def test_no_page_breaks_the_content_security_policy(page) -> None:
    """Inline scripts, handlers and injected styles would show up here as violations."""
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.add_init_script(CSP_WATCH)

    def visit(path: str) -> None:
        response = page.goto(path)
        assert "script-src 'self';" in response.headers["content-security-policy"]
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.cspViolations") == [], path

    for path in ["/", "/?date=2024-01-10&period=weekly&sort=top", "/signup", "/signin"]:
        visit(path)
    page.get_by_role("searchbox", name="Search papers").fill("pipeline parallelism")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search?q=pipeline+parallelism")
    assert page.evaluate("window.cspViolations") == []
    paper = page.locator("article.card h2 a").first.get_attribute("href")

    page.goto("/signup")
    page.get_by_label("Username").fill("reader")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/")
    for path in [paper, "/settings", "/settings/password"]:
        visit(path)

    page.goto(paper)
    page.evaluate("window.notReloaded = true")
    vote = page.locator(".paper-head form.vote")
    before = vote.locator(".count").inner_text().strip() or "0"
    vote.get_by_role("button").click()  # htmx swaps the button in place, under the policy
    expect(vote.get_by_role("button")).to_have_attribute("aria-pressed", "true")
    assert int(vote.locator(".count").inner_text().strip()) == int(before) + 1
    page.get_by_label("Add a comment").fill("Under the policy, *still* works.")
    page.get_by_role("button", name="Comment").click()
    page.wait_for_selector("article.comment em")
    assert page.get_by_label("Add a comment").input_value() == ""  # app.js, not an inline handler
    assert page.evaluate("window.notReloaded") is True
    assert page.evaluate("window.cspViolations") == []
    assert not [e for e in errors if "Content Security Policy" in e], errors


def keep_to_this_host(page, origin: str) -> list[str]:
    """Let requests reach the test server only: any other is aborted and listed."""
    host = urlsplit(origin).netloc
    elsewhere: list[str] = []

    def route(route) -> None:
        if urlsplit(route.request.url).netloc == host:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    return elsewhere


def test_api_docs_render_offline_from_the_package(page, live_server: str) -> None:
    elsewhere = keep_to_this_host(page, live_server)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(urlsplit(request.url).path))
    page.add_init_script(CSP_WATCH)
    page.goto("/")
    page.get_by_role("link", name="API").click()
    page.wait_for_url("**/docs")
    expect(page.locator(".opblock-summary-path", has_text="/api/papers/search")).to_be_visible()
    spec = page.request.get("/openapi.json").json()
    operations = sum(len(methods) for methods in spec["paths"].values())
    expect(page.locator(".opblock")).to_have_count(operations)  # every operation, drawn
    page.locator(".opblock-summary", has_text="/api/papers/search").click()  # opens, by script
    page.get_by_role("button", name="Try it out").click()
    page.get_by_placeholder("q", exact=True).fill("pipeline parallelism")
    page.get_by_role("button", name="Execute").click()  # the API answers, highlighted
    expect(page.locator(".live-responses-table .response td.response-col_status")).to_have_text(
        "200"
    )
    expect(page.locator(".live-responses-table")).to_contain_text("Zero Bubble Pipeline")
    page.wait_for_load_state("networkidle")
    assert "/api/papers/search" in asked
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in asked
    assert "/openapi.json" in asked
    assert elsewhere == []
    assert page.evaluate("window.cspViolations") == []


def test_no_page_loads_anything_from_another_host(page, live_server: str) -> None:
    elsewhere = keep_to_this_host(page, live_server)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))

    def visit(path: str) -> None:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        assert elsewhere == [], path

    visit("/")
    paper = page.locator("article.card h2 a").first.get_attribute("href")
    for path in [paper, "/search?q=pipeline+parallelism", "/signin", "/signup", "/docs"]:
        visit(path)
    page.locator(".opblock").first.wait_for()
    page.goto("/signup")
    page.get_by_label("Username").fill("reader")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/")
    for path in ["/", paper, "/settings", "/submit"]:
        visit(path)
    assert len(asked) > 20  # every page and its files went through the watch
    assert elsewhere == []
    hosts = {urlsplit(url).netloc for url in asked if url.startswith(("http", "ws"))}
    assert hosts == {urlsplit(live_server).netloc}


def test_search_filters_submitted_empty_and_wrong(page) -> None:
    page.goto("/search?q=pipeline+parallelism")
    filters = page.locator("form.filters")
    search = filters.get_by_role("button", name="Search")
    with page.expect_response(lambda response: "since=" in response.url) as answer:
        search.click()  # the browser sends every field, the empty ones too
    assert answer.value.status == 200
    assert answer.value.headers["content-type"].startswith("text/html")
    assert page.locator("article.card").count() > 0
    assert page.get_by_role("alert").count() == 0

    filters.get_by_label("From", exact=True).fill("2024-02-01")
    filters.get_by_label("To", exact=True).fill("2024-01-01")
    with page.expect_response(lambda response: "until=2024-01-01" in response.url) as answer:
        search.click()
    assert answer.value.status == 422
    assert answer.value.headers["content-type"].startswith("text/html")
    expect(page.get_by_role("alert")).to_contain_text("To: is before From")
    assert page.locator("h1").inner_text() == "Search papers"
    assert filters.get_by_label("From", exact=True).input_value() == "2024-02-01"
    assert filters.get_by_label("To", exact=True).get_attribute("aria-invalid") == "true"
    assert filters.get_by_label("Search", exact=True).input_value() == "pipeline parallelism"
    assert page.locator("article.card").count() == 0


def test_errors_are_pages_with_a_way_back(page) -> None:
    for path, status in [("/papers/9999.99999", 404), ("/nope", 404), ("/?period=week", 422)]:
        response = page.goto(path)
        assert response.status == status, path
        assert response.headers["content-type"].startswith("text/html"), path
        expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("period: should be one of")
    page.screenshot(path=ARTIFACTS / "error-page.png")
    page.get_by_role("link", name="go back to the daily papers").click()
    page.wait_for_url(re.compile(r"/$"))
    assert page.locator("article.card").count() > 0
    page.goto("/nope")
    page.get_by_role("searchbox", name="Search papers").fill("pipeline parallelism")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search?q=pipeline+parallelism")
    assert page.locator("article.card").count() > 0


def test_upvote_signed_out_on_search_results_counts_after_signing_in(page, store: Engine) -> None:
    from broadsheet.community.accounts import create_member

    create_member(store, "voter", "long enough password")
    page.goto("/search?q=pipeline+parallelism&sort=relevance")
    here = page.url
    card = page.locator("article.card").first
    paper = card.locator(".vote").get_attribute("data-paper")
    before = card.locator(".vote .count").inner_text().strip()
    card.locator(".vote a.upvote").click()
    page.wait_for_url(re.compile(r"/signin\?"))
    page.get_by_label("Username").fill("voter")
    page.get_by_label("Password").fill("long enough password")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(here)
    vote = page.locator(f'form.vote[data-paper="{paper}"]').first
    expect(vote.locator("button.upvote")).to_have_attribute("aria-pressed", "true")
    assert int(vote.locator(".count").inner_text().strip()) == int(before or 0) + 1


def test_an_arxiv_id_typed_into_search_opens_that_paper(page) -> None:
    page.goto("/")
    first = page.locator("article.card").first.locator(".vote").get_attribute("data-paper")
    title = page.locator("article.card").first.locator("h2").inner_text().strip()
    box = page.get_by_role("searchbox", name="Search papers")
    box.fill(f"arXiv:{first}v2")
    box.press("Enter")
    page.wait_for_url(f"**/papers/{first}")
    assert page.locator("h1").inner_text().strip() == title
    expect(page.locator(".arxiv-id")).to_contain_text(first)

    box = page.get_by_role("searchbox", name="Search papers")
    box.fill(f"https://arxiv.org/pdf/{first}")
    box.press("Enter")
    page.wait_for_url(f"**/papers/{first}")


def test_an_author_on_a_paper_leads_to_their_page_and_their_name_finds_their_papers(page) -> None:
    page.goto("/")
    page.locator("article.card h2 a").first.click()
    page.wait_for_url(re.compile(r"/papers/"))
    paper_title = page.locator("h1").inner_text().strip()
    author = page.locator(".paper .authors a").first
    name = author.inner_text().strip()
    author.click()
    page.wait_for_url(re.compile(r"/authors/"))
    assert page.locator("h1").inner_text().strip() == name
    titles = [t.strip() for t in page.locator("article.card h2").all_inner_texts()]
    assert paper_title in titles
    page.screenshot(path=ARTIFACTS / "author-page.png", full_page=True)

    box = page.get_by_role("searchbox", name="Search papers")
    box.fill(name)
    box.press("Enter")
    page.wait_for_url(re.compile(r"/search\?"))
    first = page.locator("article.card").first
    first.locator("h2 a").click()
    page.wait_for_url(re.compile(r"/papers/"))
    expect(page.locator(".paper .authors")).to_contain_text(name)


def test_submit_shows_progress_while_it_waits_and_explains_a_failure(page, arxiv) -> None:
    page.goto("/signup")
    page.get_by_label("Username").fill("patient")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/")

    arxiv.delay = 2.0
    page.goto("/submit")
    page.get_by_label("arXiv id or URL").fill("2401.00123")
    button = page.get_by_role("button", name="Submit")
    button.click()
    progress = page.locator("#submit-progress")
    expect(progress).to_be_visible()
    expect(progress).to_contain_text("Looking the paper up on arXiv")
    expect(button).to_be_disabled()
    page.screenshot(path=ARTIFACTS / "submit-in-progress.png")
    page.wait_for_url("**/papers/2401.00123", timeout=15_000)
    assert page.locator("h1").inner_text() == "Gradient Noise Is All You Need"

    arxiv.delay, arxiv.fail_with = 0.0, 503
    page.goto("/submit")
    page.get_by_label("arXiv id or URL").fill("2401.99999")
    started = page.evaluate("Date.now()")
    page.get_by_role("button", name="Submit").click()
    alert = page.get_by_role("alert")
    expect(alert).to_be_visible(timeout=15_000)
    assert page.evaluate("Date.now()") - started < 12_000
    text = alert.inner_text()
    assert "arXiv" in text and "http" not in text and "errno" not in text.lower()
    expect(page.get_by_role("button", name="Submit")).to_be_enabled()
    expect(page.locator("#submit-progress")).to_be_hidden()


def test_member_saves_a_paper_into_a_new_collection_and_finds_it_in_the_library(page) -> None:
    page.goto("/signup")
    page.get_by_label("Username").fill("librarian")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/")

    page.goto("/papers/2401.10241")
    title = page.locator("h1").inner_text()
    page.locator("#save summary").click()
    page.get_by_label("New collection").fill("Reading group")
    page.locator("#save").get_by_role("button", name="Save").click()
    page.wait_for_url("**/papers/2401.10241?saved=1#save")
    expect(page.locator("#save [role=status]")).to_have_text("Saved.")
    assert page.get_by_label("Reading group").is_checked()
    page.get_by_label("Private note (markdown, only you see it)").fill("Check **table 2**.")
    page.get_by_role("button", name="Save note").click()
    expect(page.locator(".note strong")).to_have_text("table 2")
    page.screenshot(path=ARTIFACTS / "save-to-collection.png", full_page=True)

    page.get_by_role("link", name="Library").click()
    page.get_by_role("link", name=re.compile(r"Reading group \(1\)")).click()
    card = page.locator("article.card")
    expect(card).to_have_count(1)
    assert card.locator("h2").inner_text() == title
    page.get_by_role("button", name="Mark read").click()
    expect(page.locator(".library-entry")).to_contain_text("read")
    page.goto("/library?show=unread")
    expect(page.locator("article.card")).to_have_count(0)

    # on the feed, the card's button says saved, and unsaves in place (htmx, no reload)
    page.goto("/?date=2023-11-30")
    saved = page.locator("#paper-2401\\.10241 .save-button")
    page.evaluate("window.notReloaded = true")
    expect(saved).to_have_attribute("aria-pressed", "true")
    saved.click()
    expect(page.locator("#paper-2401\\.10241 .save-button")).to_have_text("☆ Save")
    assert page.evaluate("window.notReloaded") is True
    page.screenshot(path=ARTIFACTS / "library-after-unsave.png", full_page=True)


def test_member_follows_an_author_and_reads_their_papers_on_following(page) -> None:
    page.goto("/signup")
    page.get_by_label("Username").fill("follower")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/")
    page.goto("/authors/Penghui%20Qi")
    titles = page.locator("article.card h2").all_inner_texts()
    page.evaluate("window.notReloaded = true")
    page.get_by_role("button", name="Follow").click()
    expect(page.locator(".follow-button")).to_have_text("Following ✓")
    assert page.evaluate("window.notReloaded") is True
    page.get_by_role("link", name="Following", exact=True).click()
    page.wait_for_url("**/following")
    expect(page.locator(".following-list li")).to_have_count(1)
    assert page.locator("article.card h2").all_inner_texts() == titles
    page.screenshot(path=ARTIFACTS / "following.png", full_page=True)
