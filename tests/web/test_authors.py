"""Author pages over HTTP, links to them from paper pages, and searching by a name."""

from __future__ import annotations

import re
from urllib.parse import quote

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from feed.test_authors import add, seed
from web.test_pages import cards


def test_author_page_lists_papers_newest_first_with_coauthors(
    client: TestClient, store: Engine
) -> None:
    seed(store)
    page = client.get("/authors/Denny%20Zhou")
    assert page.status_code == 200
    assert re.search(r"<h1>Denny Zhou</h1>", page.text)
    assert cards(page.text) == ["2401.00002", "2401.00001"]  # hidden 2401.00003 left out
    assert 'href="/authors/Quoc%20V.%20Le"' in page.text
    assert page.text.index("Quoc V. Le") < page.text.index("Xinyun Chen")  # most shared first
    assert "Hidden Coauthor" not in page.text
    assert client.get("/authors/denny%20zhou").status_code == 200  # letter case ignored


def test_unknown_author_is_404(client: TestClient, store: Engine) -> None:
    seed(store)
    assert client.get("/authors/Nobody%20Here").status_code == 404
    assert client.get("/authors/Hidden%20Coauthor").status_code == 404  # only hidden papers


def test_names_with_unicode_and_slashes_round_trip(client: TestClient, store: Engine) -> None:
    add(store, "2401.00005", 4, ["Łukasz Kaiser", "AC/DC Group", "O'Brien & Sons?"])
    paper = client.get("/papers/2401.00005").text
    links = re.findall(r'<a href="(/authors/[^"]+)"', paper)
    assert len(links) == 3
    for link, name in zip(links, ["Łukasz Kaiser", "AC/DC Group", "O'Brien & Sons?"], strict=True):
        assert link == "/authors/" + quote(name, safe="/").replace("'", "%27")
        page = client.get(link.replace("&amp;", "&"))
        assert page.status_code == 200, link
        assert cards(page.text) == ["2401.00005"]


def test_author_pages_are_paged(client: TestClient, store: Engine) -> None:
    for n in range(31):
        add(store, f"2401.{n + 100:05d}", 1 + n % 28, ["Prolific Writer"])
    first = client.get("/authors/Prolific%20Writer")
    assert len(cards(first.text)) == 30 and "31 papers" in first.text
    more = re.search(r'href="(/authors/Prolific%20Writer\?page=2)"', first.text)
    assert more, "no link to the next page"
    second = client.get(more.group(1))
    assert len(cards(second.text)) == 1
    assert set(cards(second.text)).isdisjoint(cards(first.text))


def test_paper_page_links_each_author(client: TestClient, store: Engine) -> None:
    seed(store)
    page = client.get("/papers/2401.00002").text
    assert '<a href="/authors/Xinyun%20Chen">Xinyun Chen</a>' in page
    assert '<a href="/authors/Denny%20Zhou">Denny Zhou</a>' in page


def test_searching_a_name_offers_the_author_and_their_papers_first(
    client: TestClient, store: Engine
) -> None:
    seed(store)
    add(store, "2401.00006", 6, ["Other Person"], abstract="Denny Zhou is cited here.")
    page = client.get("/search", params={"q": "denny zhou"})
    assert page.status_code == 200
    assert re.search(r'<a href="/authors/Denny%20Zhou">[^<]*Denny Zhou', page.text)
    assert "Papers by" in page.text
    assert cards(page.text)[:2] == ["2401.00002", "2401.00001"]
    assert "2401.00003" not in cards(page.text)  # hidden
    api = client.get("/api/papers/search", params={"q": "Denny Zhou"}).json()
    assert [r["paper"]["id"] for r in api["results"]][:2] == ["2401.00002", "2401.00001"]
    plain = client.get("/search", params={"q": "Denny"})
    assert "Papers by" not in plain.text  # a part of a name is an ordinary query
