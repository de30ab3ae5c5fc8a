"""The visitors' page cache: served while the store is unchanged, retired by any write."""

from __future__ import annotations

import html
import re
from urllib.parse import unquote

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from broadsheet.community.accounts import create_member
from broadsheet.community.votes import set_vote
from broadsheet.papers.record import FeedPlacement, Paper
from broadsheet.papers.repository import upsert_papers
from broadsheet.web.page_cache import PageCache


def _store_paper(store: Engine, paper_id: str, title: str) -> None:
    from datetime import date

    with store.begin() as connection:
        upsert_papers(
            connection,
            [
                Paper(
                    id=paper_id,
                    title_raw=title,
                    abstract_raw="An abstract.",
                    source="test",
                    feed=FeedPlacement(day=date(2024, 1, 10), source="test"),
                )
            ],
        )


def _count(html: str) -> str:
    return re.search(r'aria-label="upvotes">(\d*)<', html).group(1)


def test_a_vote_or_import_in_another_process_retires_the_cached_page(
    client: TestClient, store: Engine
) -> None:
    _store_paper(store, "2401.00001", "First paper")
    assert _count(client.get("/?date=2024-01-10").text) == ""
    member = create_member(store, "ada", "long enough password")
    set_vote(store, member, "2401.00001")  # through another engine, as another process would
    assert _count(client.get("/?date=2024-01-10").text) == "1"
    _store_paper(store, "2401.00002", "Second paper")
    assert "Second paper" in client.get("/?date=2024-01-10").text


def test_the_cache_serves_unchanged_pages_without_rendering() -> None:
    cache: PageCache[str] = PageCache(max_entries=2)
    made: list[str] = []

    def make(value: str):
        return lambda: made.append(value) or value

    assert cache.get_or_make("a", 1, make("a1")) == "a1"
    assert cache.get_or_make("a", 1, make("again")) == "a1"  # served from the cache
    assert cache.get_or_make("a", 2, make("a2")) == "a2"  # the store changed
    cache.get_or_make("b", 2, make("b2"))
    cache.get_or_make("c", 2, make("c2"))  # evicts the least recently used: a
    assert cache.get_or_make("a", 2, make("a2 again")) == "a2 again"
    assert made == ["a1", "a2", "b2", "c2", "a2 again"]


def test_entries_expire(monkeypatch) -> None:
    cache: PageCache[str] = PageCache(max_age=60)
    clock = iter([0.0, 30.0, 61.0, 61.0])
    monkeypatch.setattr("broadsheet.web.page_cache.time.monotonic", lambda: next(clock))
    assert cache.get_or_make("a", 1, lambda: "old") == "old"
    assert cache.get_or_make("a", 1, lambda: "new") == "old"
    assert cache.get_or_make("a", 1, lambda: "new") == "new"


def _next_links(html_text: str) -> set[str]:
    """Where the page's sign-in and sign-up links return to."""
    found = re.findall(r'href="/sign(?:in|up)\?next=([^"&]*)', html_text)
    return {unquote(html.unescape(target)) for target in found}


def test_one_visitors_query_string_reaches_no_other_visitor(
    client: TestClient, store: Engine
) -> None:
    _store_paper(store, "2401.00001", "First paper")
    first = client.get("/?date=2024-01-10&utm_source=evil&fbclid=x").text
    assert "utm_source" not in first and "fbclid" not in first  # the page does not read them
    assert _next_links(first) == {"/?date=2024-01-10"}
    second = client.get("/?date=2024-01-10").text
    assert "utm_source" not in second and _next_links(second) == {"/?date=2024-01-10"}


def test_pages_whose_parameters_differ_are_cached_apart(client: TestClient, store: Engine) -> None:
    _store_paper(store, "2401.00001", "First paper")
    # a visitor's "for you" is the trending feed: the same rows, yet links back to its own page
    day = "date=2024-01-10"
    for query in (
        f"{day}&sort=for_you",
        f"{day}&sort=trending",
        day,
        f"{day}&page=1",
        f"sort=new&{day}",
    ):
        page = client.get(f"/?{query}").text
        assert _next_links(page) == {f"/?{query}"}, query
    fragment = client.get("/?date=2024-01-10&page=2", headers={"HX-Request": "true"}).text
    assert _next_links(fragment) <= {"/?date=2024-01-10&page=2"}


def test_a_forged_host_reaches_no_other_visitor(client: TestClient, store: Engine) -> None:
    _store_paper(store, "2401.00001", "First paper")
    forged = client.get("/?date=2024-01-10", headers={"Host": "evil.example"}).text
    assert "First paper" in forged
    assert "evil.example" not in client.get("/?date=2024-01-10").text
