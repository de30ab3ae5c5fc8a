"""Paged lists (search results, the feed) link back as well as on, and say when a page is past
the last one instead of calling the list empty."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient

WEEK = "/?date=2024-03-31&period=weekly&sort=trending"  # 47 papers: two pages


def link(page: str, text: str) -> str:
    """The address of the link with this text (unescaped)."""
    match = re.search(rf'<a [^>]*href="([^"]+)"[^>]*>{re.escape(text)}</a>', page)
    assert match, f"no link {text!r}"
    return html.unescape(match.group(1))


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def text(page: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html.unescape(page)).split())


def test_search_page_two_links_back_to_page_one(daily_client: TestClient) -> None:
    first = daily_client.get("/search?q=diffusion&sort=date&min_upvotes=0")
    assert "Previous page" not in first.text
    second_url = link(first.text, "Next page")
    assert query(second_url) == {
        "q": ["diffusion"], "sort": ["date"], "min_upvotes": ["0"], "page": ["2"]
    }  # fmt: skip
    second = daily_client.get(second_url)
    back = link(second.text, "Previous page")
    assert query(back) == {"q": ["diffusion"], "sort": ["date"], "min_upvotes": ["0"]}
    assert daily_client.get(back).text.count('class="card') == first.text.count('class="card')


def test_next_page_keeps_the_page_out_of_the_other_parameters(daily_client: TestClient) -> None:
    """The page parameter first in the address is replaced, not kept beside the new one."""
    first = daily_client.get("/search?page=1&q=diffusion")
    assert query(link(first.text, "Next page")) == {"q": ["diffusion"], "page": ["2"]}


def test_feed_page_two_links_back_to_the_first_page(daily_client: TestClient) -> None:
    first = daily_client.get(WEEK)
    assert "Previous page" not in first.text
    second = daily_client.get(link(first.text, "More papers"))
    assert second.status_code == 200 and "<html" in second.text
    back = link(second.text, "Previous page")
    assert query(back) == {"date": ["2024-03-25"], "period": ["weekly"], "sort": ["trending"]}
    more = daily_client.get(WEEK + "&page=2", headers={"HX-Request": "true"})
    assert "Previous page" not in more.text  # the cards scrolled in below page one


def test_a_search_page_past_the_last_says_so(daily_client: TestClient) -> None:
    total = int(re.search(r"(\d+) results? for", daily_client.get("/search?q=x").text).group(1))
    assert 0 < total <= 30
    page = daily_client.get("/search?q=x&page=99")
    assert page.status_code == 200
    assert "No more results: page 99 is past the last page (page 1)." in text(page.text)
    assert "Nothing to show" not in page.text and "results for" not in page.text
    assert query(link(page.text, "Go to the first page")) == {"q": ["x"]}


def test_a_feed_page_past_the_last_says_so(daily_client: TestClient) -> None:
    page = daily_client.get(WEEK + "&page=99")
    assert page.status_code == 200
    assert "No more results: page 99 is past the last page (page 2)." in text(page.text)
    assert "No papers on the feed in this period" not in page.text
    assert query(link(page.text, "Go to the first page")) == {
        "date": ["2024-03-25"], "period": ["weekly"], "sort": ["trending"]
    }  # fmt: skip
    assert query(link(page.text, "Go to the last page"))["page"] == ["2"]
