"""Layout on a phone (390 px) and a desktop (1280 px), measured in a real browser.

Each test measures one thing a reader sees: the upvote button clear of the banner, a long
author list folded, the signed-in header on one row, library rows above their divider,
the save panel's checkboxes level with their labels, an icon for "Not interested", and
punctuation set close after a link. One server and one member serve the whole module.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from broadsheet.config import Settings
from broadsheet.ingest.runner import import_file
from broadsheet.web.app import create_app
from databases import drop_database, new_database_url
from helpers import SHARED_DATA
from helpers import live_server as running
from web.test_browser import ARTIFACTS, CHROMIUM

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (.ci/run installs it with apt)"
)

AXE = Path(__file__).resolve().parents[1] / "vendor" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
MANY_AUTHORS = "2402.15627"  # MegaScale: 32 authors
FEW_AUTHORS = "2401.10241"
SHOWN_AUTHORS = 5
FOCUS_RING_PX = 5  # a 3 px outline drawn 2 px out (app.css)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from broadsheet.db.engine import make_engine, migrate

    daily = SHARED_DATA / "hf-daily-papers" / "daily_papers.json"
    if not daily.exists():
        pytest.skip(f"shared data not found at {daily}")
    url = new_database_url(tmp_path_factory.mktemp("layout"), migrated=True)
    engine = make_engine(url)
    migrate(engine)
    import_file(engine, daily)
    with running(create_app(Settings(database_url=url, secret_key="layout-test"))) as base:
        yield base
    engine.dispose()
    drop_database(url)


@pytest.fixture(scope="module")
def browser_and_member(site: str):
    """A browser, and the cookies of a member who saved two papers: one into a collection,
    with a note."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless"]
        )
        context = browser.new_context(base_url=site)
        tab = context.new_page()
        tab.goto("/signup")
        tab.get_by_label("Username").fill("reader")
        tab.get_by_label("Password").fill("a long enough password")
        tab.get_by_role("button", name="Sign up").click()
        tab.wait_for_url("**/")
        tab.goto(f"/papers/{MANY_AUTHORS}")
        tab.locator("#save summary").click()
        tab.get_by_label("New collection").fill("Reading group")
        tab.locator("#save").get_by_role("button", name="Save").click()
        tab.wait_for_url(f"**/papers/{MANY_AUTHORS}?saved=1#save")
        tab.get_by_label("Private note").fill("Read **section 4** first.")
        tab.get_by_role("button", name="Save note").click()
        tab.wait_for_load_state()
        tab.goto(f"/papers/{FEW_AUTHORS}")
        tab.locator("#save summary").click()
        tab.locator("#save").get_by_role("button", name="Save").click()
        tab.wait_for_url(f"**/papers/{FEW_AUTHORS}?saved=1#save")
        member = context.storage_state()
        context.close()
        yield browser, member
        browser.close()


@pytest.fixture
def open_page(browser_and_member, site: str, request: pytest.FixtureRequest):
    """Opens a path at a viewport, signed in or not; screenshots each page at the end."""
    browser, member = browser_and_member
    contexts = []

    def opener(path: str, viewport: dict[str, int] = PHONE, signed_in: bool = True) -> Page:
        context = browser.new_context(
            base_url=site,
            viewport=viewport,
            bypass_csp=True,  # only for axe's injected script; the site's pages keep the policy
            storage_state=member if signed_in else None,
        )
        contexts.append(context)
        tab = context.new_page()
        tab.goto(path)
        return tab

    yield opener
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for number, context in enumerate(contexts):
        for tab in context.pages:
            tab.screenshot(path=ARTIFACTS / f"layout-{request.node.name}-{number}.png")
        context.close()


def no_axe_violation(tab: Page) -> None:
    tab.add_script_tag(content=AXE.read_text())
    found = tab.evaluate(
        "async () => (await axe.run(document)).violations.map(v => "
        "`${v.id} (${v.impact}): ${v.help} at ${v.nodes.map(n => n.target).join(' | ')}`)"
    )
    assert found == [], "\n".join(found)


def box(tab: Page, selector: str) -> dict[str, float]:
    return tab.locator(selector).first.evaluate(
        "e => { const r = e.getBoundingClientRect();"
        " return {top: r.top, bottom: r.bottom, left: r.left, right: r.right} }"
    )


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
@pytest.mark.parametrize("signed_in", [True, False], ids=["member", "visitor"])
def test_the_upvote_button_is_clear_of_the_banner(open_page, viewport, signed_in) -> None:
    tab = open_page(f"/papers/{MANY_AUTHORS}", viewport, signed_in)
    upvote, banner = box(tab, ".paper-head .upvote"), box(tab, ".banner")
    on_top = tab.evaluate(
        "() => { const u = document.querySelector('.paper-head .upvote'),"
        " r = u.getBoundingClientRect();"
        " return [[r.left + r.width / 2, r.top + r.height / 2], [r.left + 2, r.top + 2],"
        " [r.right - 2, r.top + 2]].map(([x, y]) => u.contains(document.elementFromPoint(x, y))) }"
    )
    assert on_top == [True, True, True]
    # its whole outline, focus ring included, sits below the banner's edge
    assert upvote["top"] - FOCUS_RING_PX >= banner["bottom"], (upvote, banner)


def test_a_long_author_list_shows_a_few_then_and_n_more(open_page) -> None:
    tab = open_page(f"/papers/{MANY_AUTHORS}", signed_in=False)
    authors = tab.locator(".paper .authors a")
    expect(authors).to_have_count(32)  # every name stays in the page
    expect(tab.locator("meta[name=citation_author]")).to_have_count(32)
    shown = [a for a in authors.all() if a.is_visible()]
    assert len(shown) == SHOWN_AUTHORS
    more = tab.locator(".paper .authors summary")
    expect(more).to_have_text(f"and {32 - SHOWN_AUTHORS} more")
    assert box(tab, ".paper .authors summary")["bottom"] < PHONE["height"]  # on the first screen
    assert box(tab, ".paper .links")["top"] < PHONE["height"]
    tab.screenshot(path=ARTIFACTS / "layout-authors-folded.png")

    more.focus()
    tab.keyboard.press("Enter")
    expect(authors.last).to_be_visible()
    assert all(a.is_visible() for a in authors.all())
    no_axe_violation(tab)


def test_a_short_author_list_is_shown_whole(open_page) -> None:
    tab = open_page(f"/papers/{FEW_AUTHORS}", signed_in=False)
    expect(tab.locator(".paper .authors summary")).to_have_count(0)
    assert all(a.is_visible() for a in tab.locator(".paper .authors a").all())


def test_the_signed_in_header_fits_one_row_on_a_phone(open_page) -> None:
    tab = open_page("/")
    header = box(tab, "header.site")
    assert header["bottom"] - header["top"] <= 80, header  # one row of 44 px controls
    assert tab.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # the menu opens from the keyboard, and each of its entries reads on one line
    menu = tab.locator("header.site summary")
    menu.focus()
    tab.keyboard.press("Enter")
    library = tab.locator("nav.account").get_by_role("link", name="Library")
    expect(library).to_be_visible()
    lines = tab.locator("nav.account a, nav.account button").evaluate_all(
        "es => es.map(e => { const r = document.createRange(); r.selectNodeContents(e);"
        " return new Set([...r.getClientRects()].map(q => Math.round(q.top))).size })"
    )
    assert lines and all(count == 1 for count in lines), lines
    tab.screenshot(path=ARTIFACTS / "layout-header-menu-open.png")
    no_axe_violation(tab)
    library.focus()
    tab.keyboard.press("Enter")
    tab.wait_for_url("**/library")


def test_the_signed_in_header_is_one_row_on_a_desktop(open_page) -> None:
    tab = open_page("/", DESKTOP)
    expect(tab.locator("header.site summary")).to_be_hidden()
    nav = tab.locator("nav.account")
    for name in ("For you", "Following", "Library", "Submit"):
        expect(nav.get_by_role("link", name=name)).to_be_visible()
    expect(nav.get_by_role("button", name="Sign out")).to_be_visible()
    header = box(tab, "header.site")
    assert header["bottom"] - header["top"] <= 80, header


def test_the_visitor_header_stays_within_two_rows_on_a_phone(open_page) -> None:
    tab = open_page("/", signed_in=False)
    header = box(tab, "header.site")
    assert header["bottom"] - header["top"] <= 130, header
    expect(tab.get_by_role("link", name="Sign in")).to_be_visible()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_library_rows_sit_above_the_divider(open_page, viewport) -> None:
    tab = open_page("/library", viewport)
    # between two cards: the divider (a rule under the first or over the second) comes
    # after everything of the first row (its entry line, its note)
    rows = tab.evaluate(
        "() => { const rule = (e, side) => parseFloat(getComputedStyle(e)[`border${side}Width`]);"
        " const cards = [...document.querySelectorAll('section.cards > .card')];"
        " return cards.map((card, i) => { const rest = [];"
        " for (let e = card.nextElementSibling; e && !e.matches('.card'); e = e.nextElementSibling)"
        " rest.push(e);"
        " const c = card.getBoundingClientRect(), next = cards[i + 1];"
        " const lines = [rule(card, 'Bottom') ? c.bottom : null,"
        " next && rule(next, 'Top') ? next.getBoundingClientRect().top : null];"
        " return {card_bottom: c.bottom, rest_top: Math.min(...rest.map(e =>"
        " e.getBoundingClientRect().top)), rest_bottom: Math.max(...rest.map(e =>"
        " e.getBoundingClientRect().bottom)), lines: lines.filter(y => y !== null),"
        " last: !next} }) }"
    )
    assert len(rows) == 1 + 1  # the two saved papers
    for row in rows:
        assert row["rest_top"] >= row["card_bottom"] - 1, row  # not drawn over the card
        assert all(y >= row["rest_bottom"] - 1 for y in row["lines"]), row
        assert row["last"] or row["lines"], row  # rows are divided
    no_axe_violation(tab)


def test_save_panel_checkboxes_are_level_with_their_labels(open_page) -> None:
    tab = open_page(f"/papers/{MANY_AUTHORS}#save")
    expect(tab.locator("#save")).to_have_attribute("open", "")
    tab.locator("#save fieldset").scroll_into_view_if_needed()
    offsets = tab.locator("#save fieldset label").evaluate_all(
        "ls => ls.map(l => { const input = l.querySelector('input'),"
        " text = [...l.childNodes].find(n => n.nodeType === 3 && n.textContent.trim()),"
        " r = document.createRange(); r.selectNodeContents(text);"
        " const t = r.getBoundingClientRect(), i = input.getBoundingClientRect();"
        " return Math.abs((t.top + t.bottom) / 2 - (i.top + i.bottom) / 2) })"
    )
    assert len(offsets) == 2  # the collection's checkbox and the new collection's field
    assert all(offset <= 3 for offset in offsets), offsets
    tab.locator("#save").screenshot(path=ARTIFACTS / "layout-save-panel.png")
    no_axe_violation(tab)


def test_not_interested_is_an_icon_with_a_name(open_page) -> None:
    tab = open_page("/")
    dismiss = tab.locator(".dismiss-button").first
    expect(dismiss).to_have_accessible_name("Not interested")
    expect(dismiss.locator("svg")).to_have_count(1)
    assert dismiss.locator("svg").get_attribute("aria-hidden") == "true"
    icon = box(tab, ".dismiss-button svg")
    assert icon["right"] - icon["left"] >= 10
    assert "\N{THUMBS DOWN SIGN}" not in tab.content()
    dismiss.click()
    expect(dismiss).to_have_attribute("aria-pressed", "true")
    expect(tab.locator(".dismiss-button").first.locator("svg")).to_have_count(1)
    no_axe_violation(tab)


@pytest.mark.parametrize("path", ["/signin", "/signup"], ids=["signin", "signup"])
def test_punctuation_after_a_link_sits_close(open_page, path: str) -> None:
    tab = open_page(path, signed_in=False)
    after_links = tab.evaluate(
        "() => [...document.querySelectorAll('main a')].flatMap(a => {"
        " const next = a.nextSibling;"
        " if (!next || next.nodeType !== 3 || !/^\\s*[.,;:]/.test(next.textContent)) return [];"
        " const r = document.createRange(); r.setStart(next, 0);"
        " r.setEnd(next, next.textContent.search(/[.,;:]/) + 1);"
        " return [{text: next.textContent, gap: r.getBoundingClientRect().left"
        " - a.getBoundingClientRect().right}] })"
    )
    assert after_links, "a link followed by punctuation"
    for found in after_links:
        assert not found["text"].startswith((" ", "\n")), found
        assert found["gap"] < 2, found
    no_axe_violation(tab)
