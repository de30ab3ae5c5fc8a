"""What assistive technology reads from every page: one heading each, controls named in full.

The browser side (axe-core at desktop and phone widths) is in test_browser.py.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from broadsheet.ingest.runner import import_file

CSS = Path(__file__).resolve().parents[2] / "src" / "broadsheet" / "web" / "static" / "app.css"


def sign_up(client: TestClient, username: str, password: str) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/signup").text).group(1)
    data = {"username": username, "password": password, "csrf_token": token}
    assert client.post("/signup", data=data, follow_redirects=False).status_code == 303


def first_href(html: str, prefix: str) -> str:
    match = re.search(rf'href="({re.escape(prefix)}[^"#?]+)"', html)
    assert match, f"no link to {prefix}"
    return match.group(1)


def h1_count(html: str) -> int:
    return len(re.findall(r"<h1[\s>]", html))


def visitor_pages(client: TestClient) -> dict[str, str]:
    """Every page a visitor reaches, as its HTML, by page type."""
    feed = client.get("/").text
    paper = client.get(first_href(feed, "/papers/")).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', feed).group(1)
    subscribed = client.post("/subscribe", data={"email": "a@example.org", "csrf_token": token})
    return {
        "feed": feed,
        "paper": paper,
        "search": client.get("/search?q=pipeline+parallelism").text,
        "search without a query": client.get("/search").text,
        "search form problem": client.get("/search?q=x&since=2024-02-01&until=2024-01-01").text,
        "organisation": client.get("/organisations/cartesia-ai").text,
        "author": client.get(first_href(paper, "/authors/")).text,
        "signin": client.get("/signin").text,
        "signup": client.get("/signup").text,
        "error": client.get("/nope").text,
        "subscribe result": subscribed.text,
        "subscribe refused": client.post(
            "/subscribe", data={"email": "not an address", "csrf_token": token}
        ).text,
        "subscription link": client.get("/subscribe/confirm?token=bogus").text,
        "unsubscribe link": client.get("/unsubscribe?token=bogus").text,
        "docs": client.get("/docs").text,
    }


def member_pages(client: TestClient) -> dict[str, str]:
    sign_up(client, "reader", "a long enough password")
    return {
        "settings": client.get("/settings").text,
        "password": client.get("/settings/password").text,
        "submit": client.get("/submit").text,
        "feed, signed in": client.get("/").text,
    }


def test_every_page_has_exactly_one_h1(daily_client: TestClient, fixtures: Path) -> None:
    import_file(daily_client.app.state.engine, fixtures / "daily_papers" / "good.json")
    pages = visitor_pages(daily_client) | member_pages(daily_client)
    counts = {name: h1_count(html) for name, html in pages.items()}
    assert counts == dict.fromkeys(pages, 1)


def test_an_empty_store_still_has_one_h1(client: TestClient) -> None:
    assert h1_count(client.get("/").text) == 1


def vote_controls(html: str) -> list[str]:
    return re.findall(r'<(?:button|a) [^>]*class="upvote"[^>]*>', html)


def test_the_upvote_control_is_named_with_its_count_for_visitors(
    daily_client: TestClient,
) -> None:
    html = daily_client.get("/?date=2024-01-10").text
    shown = re.findall(r'<span class="count"[^>]*>(\d*)</span>', html)
    controls = vote_controls(html)
    assert controls and len(controls) == len(shown)
    for control, count in zip(controls, shown, strict=True):
        assert f'aria-label="Upvote ({count or 0})"' in control
        assert 'title="Sign in to upvote"' in control
    assert 'class="count" aria-hidden="true"' in html  # the name already says it


def test_the_upvote_button_says_whether_it_is_pressed(daily_client: TestClient) -> None:
    sign_up(daily_client, "reader", "a long enough password")
    feed = daily_client.get("/").text
    paper = daily_client.get(first_href(feed, "/papers/")).text
    [button] = vote_controls(paper[paper.index('class="paper-head"') :])[:1]
    count = int(re.search(r'aria-label="Upvote \((\d+)\)"', button).group(1))
    token = re.search(r'name="csrf_token" value="([^"]+)"', paper).group(1)
    path = re.search(r'action="(/papers/[^"]+/vote)"', paper).group(1)
    pressed = daily_client.post(path, headers={"HX-Request": "true", "X-CSRF-Token": token})
    [after] = vote_controls(pressed.text)
    assert f'aria-label="Remove your upvote ({count + 1})"' in after
    assert 'aria-pressed="true"' in after


def test_every_control_shows_a_focus_ring() -> None:
    css = CSS.read_text()
    rule = re.search(r"([^{}]*:focus-visible[^{}]*)\{([^}]*)\}", css)
    assert rule, "no :focus-visible rule"
    selectors, body = rule.groups()
    for control in ("a", "button", "input", "select", "textarea", "summary"):
        assert re.search(rf"(^|[\s,]){control}:focus-visible", selectors), control
    assert re.search(r"outline:\s*\d", body)
