"""Accessibility in a real browser: axe-core on every page type at two widths, phones, focus.

One server and one browser serve the whole module (module-scoped fixtures), so this lives
apart from the other browser tests, which start their own per test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from broadsheet.config import Settings
from broadsheet.ingest.runner import import_file
from broadsheet.web.app import create_app
from databases import drop_database, new_database_url
from helpers import live_server as running
from web.test_browser import ARTIFACTS, CHROMIUM

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (.ci/run installs it with apt)"
)


AXE = Path(__file__).resolve().parents[1] / "vendor" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": PHONE}
AXE_PAGES = {
    "feed": "/",
    "paper": "/papers/2401.10241",
    "search": "/search?q=pipeline+parallelism",
    "search-nothing-close": "/search?q=zxqvw+plokjh",
    "signin": "/signin",
    "signup": "/signup",
    "submit": "/submit",
    "settings": "/settings",
    "library": "/library",
    "for-you": "/for-you",
    "following": "/following",
    "password-forgot": "/password/forgot",
    "member-profile": "/members/reader",
    "for-you-signals": "/for-you/signals",
    "paper-member": "/papers/2312.00752",
    "organisation": "/organisations/cartesia-ai",
    "author": "/authors/Penghui%20Qi",
    "error": "/nope",
    "subscribe-result": "subscribe",
    "docs": "/docs",
    "admin": "/admin",
    "admin-members": "/admin/members",
    "admin-reports": "/admin/reports",
    "admin-audit": "/admin/audit",
    "admin-hidden": "/admin/hidden",
    "admin-settings": "/admin/settings",
}
ADMIN_PAGES = (
    "/admin", "/admin/members", "/admin/reports", "/admin/audit", "/admin/hidden",
    "/admin/settings",
)  # fmt: skip
SWAGGER_UI_OWN = pytest.mark.xfail(
    strict=True,
    reason="Swagger UI's own markup: contrast of its method badges and version stamp, "
    "buttons nested in its operation summaries, heading levels",
)


@pytest.fixture(scope="module")
def axe_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the whole axe matrix, with the shared papers and an organisation."""
    from broadsheet.db.engine import make_engine, migrate
    from helpers import SHARED_DATA

    daily = SHARED_DATA / "hf-daily-papers" / "daily_papers.json"
    if not daily.exists():
        pytest.skip(f"shared data not found at {daily}")
    url = new_database_url(tmp_path_factory.mktemp("axe"), migrated=True)
    engine = make_engine(url)
    migrate(engine)
    import_file(engine, daily)
    import_file(engine, Path(__file__).parents[1] / "fixtures" / "daily_papers" / "good.json")
    _admin_pages_with_something_to_show(engine)
    with running(create_app(Settings(database_url=url, secret_key="axe-test"))) as site:
        yield site
    engine.dispose()
    drop_database(url)


def _admin_pages_with_something_to_show(engine) -> None:
    """The member of the matrix is an admin; a late job, a reported comment and an audit entry
    give the admin pages their lists."""
    from datetime import datetime

    from broadsheet.community.accounts import create_member
    from broadsheet.community.comments import add_comment
    from broadsheet.community.moderation import set_paper_hidden
    from broadsheet.community.reports import report_comment
    from broadsheet.ops.jobs import record_run

    reader = create_member(engine, "reader", "a long enough password", is_admin=True)
    other = create_member(engine, "other", "a long enough password")
    comment = add_comment(engine, other, "2312.00752", "A comment someone reported.")
    report_comment(engine, reader, comment.id, "off topic")
    set_paper_hidden(engine, reader, "2401.10241", True)
    set_paper_hidden(engine, reader, "2401.10241", False)
    failing = record_run(engine, "harvest:cs.CL", "w1", clock=lambda: datetime(2026, 1, 1))
    with contextlib.suppress(RuntimeError), failing:
        raise RuntimeError("arXiv answered 503")


@pytest.fixture(scope="module")
def axe_browser(axe_site: str):
    """One browser and one member's cookies for every page of the matrix."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless"]
        )
        context = browser.new_context(base_url=axe_site)
        tab = context.new_page()
        tab.goto("/signin")
        tab.get_by_label("Username").fill("reader")
        tab.get_by_label("Password").fill("a long enough password")
        tab.get_by_role("button", name="Sign in").click()
        tab.wait_for_url("**/")
        member = context.storage_state()
        context.close()
        yield browser, member
        browser.close()


def open_for_axe(axe_browser, axe_site: str, path: str, width: str):
    """A tab in which scripts may be injected (only here: the site's pages keep the policy)."""
    browser, member = axe_browser
    signed_in = path in (
        "/settings",
        "/submit",
        "/library",
        "/papers/2312.00752",
        "/for-you",
        "/for-you/signals",
        "/following",
        "/authors/Penghui%20Qi",
        *ADMIN_PAGES,
    )
    context = browser.new_context(
        base_url=axe_site,
        viewport=WIDTHS[width],
        bypass_csp=True,
        storage_state=member if signed_in else None,
    )
    tab = context.new_page()
    if path == "subscribe":
        tab.goto("/")
        if width == "phone":
            tab.locator(".banner summary").click()
        tab.get_by_placeholder("you@example.org").fill("reader@example.org")
        tab.get_by_role("button", name="Subscribe").click()
        tab.wait_for_url("**/subscribe")
    else:
        tab.goto(path)
    tab.wait_for_load_state("networkidle")
    return context, tab


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize(
    "kind", [pytest.param(k, marks=SWAGGER_UI_OWN) if k == "docs" else k for k in AXE_PAGES]
)
def test_axe_finds_no_violation(axe_browser, axe_site: str, kind: str, width: str) -> None:
    context, tab = open_for_axe(axe_browser, axe_site, AXE_PAGES[kind], width)
    try:
        if kind == "docs":
            tab.locator(".opblock").first.wait_for()
        tab.add_script_tag(content=AXE.read_text())
        found = tab.evaluate(
            "async () => (await axe.run(document)).violations.map(v => "
            "`${v.id} (${v.impact}): ${v.help} at ${v.nodes.map(n => n.target).join(' | ')}`)"
        )
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=ARTIFACTS / f"axe-{kind}-{width}.png", full_page=True)
        assert found == [], "\n".join(found)
    finally:
        context.close()


@pytest.mark.parametrize("path", ["/", "/search?q=pipeline+parallelism"])
def test_on_a_phone_the_first_result_is_on_the_first_screen(
    axe_browser, axe_site: str, path: str
) -> None:
    context, tab = open_for_axe(axe_browser, axe_site, path, "phone")
    try:
        top = tab.locator("article.card").first.bounding_box()["y"]
        name = "feed" if path == "/" else "search"
        tab.screenshot(path=ARTIFACTS / f"phone-first-screen-{name}.png")
        assert top + 80 < PHONE["height"], f"first card starts at {top}px"
    finally:
        context.close()


@pytest.mark.parametrize("path", ["/", "/search?q=pipeline+parallelism", "/papers/2401.10241"])
def test_on_a_phone_every_control_is_a_44px_tap_target(
    axe_browser, axe_site: str, path: str
) -> None:
    context, tab = open_for_axe(axe_browser, axe_site, path, "phone")
    try:
        controls = tab.locator(
            "header button, header input, header nav a, .vote .upvote, main button, "
            "main input:not([type=hidden]), main select, summary, .tabs a"
        )
        small = []
        for index in range(controls.count()):
            box = controls.nth(index).bounding_box()
            if box and box["height"] < 44:
                small.append(f"{controls.nth(index).evaluate('e => e.outerHTML')[:80]}: {box}")
        assert small == []
    finally:
        context.close()


def test_focus_rings_show_on_every_control(axe_browser, axe_site: str) -> None:
    context, tab = open_for_axe(axe_browser, axe_site, "/search?q=pipeline+parallelism", "desktop")
    try:
        bare = []
        for _ in range(25):
            tab.keyboard.press("Tab")
            ring = tab.evaluate(
                "() => { const e = document.activeElement, s = getComputedStyle(e);"
                " return [e.tagName, s.outlineStyle, parseFloat(s.outlineWidth)] }"
            )
            if ring[1] == "none" or ring[2] < 2:
                bare.append(ring)
        assert bare == []
    finally:
        context.close()
