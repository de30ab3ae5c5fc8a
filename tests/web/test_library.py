"""The library over HTTP: save, collections, read/unread, notes, sharing, exports, refusals."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime

import bibtexparser
import feedparser
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from broadsheet.config import Settings
from broadsheet.db.schema import collection_papers, papers, saved_papers
from broadsheet.papers.record import FeedPlacement, Paper
from broadsheet.papers.repository import upsert_papers
from broadsheet.web.app import create_app
from web.conftest import form_token
from web.test_community import sign_up

IDS = ["2401.00001", "2401.00002", "hep-th/9901001"]


def _paper(paper_id: str, title: str) -> Paper:
    return Paper(
        id=paper_id,
        title_raw=title,
        abstract_raw=f"Abstract of {title}.",
        source="test",
        authors=["Ada Lovelace", "Alan Turing"],
        published_at=datetime(2024, 1, 10, 9),
        feed=FeedPlacement(day=date(2024, 1, 10), source="test"),
    )


@pytest.fixture
def site(store: Engine, database_url: str) -> Iterator[TestClient]:
    with store.begin() as connection:
        upsert_papers(
            connection,
            [
                _paper(IDS[0], "Graph networks over-smooth"),
                _paper(IDS[1], "Diffusion for video"),
                _paper(IDS[2], "Strings and branes"),
            ],
        )
    settings = Settings(database_url=database_url, secret_key="test-secret")
    with TestClient(create_app(settings)) as client:
        yield client


def post(client: TestClient, path: str, data: dict | None = None, htmx: bool = False):
    token = form_token(client.get("/").text)
    headers = {"HX-Request": "true", "X-CSRF-Token": token} if htmx else {}
    body = dict(data or {}) if htmx else {**(data or {}), "csrf_token": token}
    return client.post(path, data=body, headers=headers, follow_redirects=False)


def new_collection(client: TestClient, name: str, visibility: str = "private") -> int:
    made = post(client, "/library/collections", {"name": name, "visibility": visibility})
    assert made.status_code == 303, made.text
    return int(re.search(r"collection=(\d+)", made.headers["location"]).group(1))


def saved_rows(store: Engine) -> int:
    with store.connect() as connection:
        return connection.execute(select(func.count()).select_from(saved_papers)).scalar_one()


def test_saving_is_for_members_and_a_card_button_toggles_in_place(
    site: TestClient, store: Engine
) -> None:
    assert "☆ Save" not in site.get("/").text  # visitors see no save button
    refused = site.post(f"/papers/{IDS[0]}/save", data={"csrf_token": "x"}, follow_redirects=False)
    assert refused.status_code == 403  # no session, no token
    sign_up(site, "ada")
    assert site.get("/").text.count("☆ Save") == 3
    saved = post(site, f"/papers/{IDS[0]}/save", {"saved": "true"}, htmx=True)
    assert saved.status_code == 200 and "★ Saved" in saved.text and 'value="false"' in saved.text
    assert "★ Saved" in site.get("/").text and "★ Saved" in site.get("/search?q=graph").text
    again = post(site, f"/papers/{IDS[0]}/save", {"saved": "true"}, htmx=True)
    assert again.status_code == 200 and saved_rows(store) == 1  # a double click saves once
    removed = post(site, f"/papers/{IDS[0]}/save", {"saved": "false"})
    assert removed.status_code == 303 and saved_rows(store) == 0
    missing = post(site, "/papers/2499.99999/save", {"saved": "true"})
    assert missing.status_code == 404 and "No paper" in missing.text


def test_concurrent_saves_of_one_paper_keep_one_row(site: TestClient, store: Engine) -> None:
    sign_up(site, "ada")
    token = form_token(site.get("/").text)

    def click(_: int) -> int:
        return site.post(
            f"/papers/{IDS[1]}/save",
            data={"saved": "true", "csrf_token": token},
            follow_redirects=False,
        ).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(click, range(16)))
    assert codes == [303] * 16
    assert saved_rows(store) == 1


def test_save_to_collections_from_the_paper_page(site: TestClient, store: Engine) -> None:
    sign_up(site, "ada")
    reading = new_collection(site, "Reading group")
    answer = post(
        site, f"/papers/{IDS[0]}/collections", {"collection": [reading], "new_collection": "GNNs"}
    )
    assert answer.status_code == 303 and answer.headers["location"].endswith("#save")
    assert (
        '<details class="library-panel" id="save" open>'
        in site.get(f"/papers/{IDS[1]}?save=1").text
    )  # the digest's Save link opens the panel
    assert '<details class="library-panel" id="save">' in site.get(f"/papers/{IDS[1]}").text
    page = site.get(f"/papers/{IDS[0]}").text
    checked = re.findall(r'name="collection" value="(\d+)" checked', page)
    assert len(checked) == 2
    library = site.get(f"/library?collection={reading}").text
    assert "Graph networks over-smooth" in library and "Diffusion for video" not in library
    # unticking every box leaves the paper saved, in no collection
    post(site, f"/papers/{IDS[0]}/collections", {})
    with store.connect() as connection:
        assert connection.execute(select(func.count()).select_from(collection_papers)).scalar() == 0
    assert saved_rows(store) == 1
    # a name taken in another letter case is refused with the field named
    taken = post(site, "/library/collections", {"name": "reading GROUP"})
    assert taken.status_code == 422 and "Collection name is taken" in taken.text
    empty = post(site, "/library/collections", {"name": "   "})
    assert empty.status_code == 422 and "Collection name is empty" in empty.text


def test_another_members_collection_can_be_neither_seen_nor_filled(
    site: TestClient, store: Engine
) -> None:
    sign_up(site, "ada")
    private = new_collection(site, "Secret")
    post(site, f"/papers/{IDS[0]}/collections", {"collection": [private]})
    token_page = site.get(f"/library?collection={private}").text
    assert "Shared at" not in token_page  # private: no link shown
    post(site, "/signout")
    sign_up(site, "bob")
    assert site.get(f"/library?collection={private}").status_code == 404
    assert post(site, f"/papers/{IDS[1]}/collections", {"collection": [private]}).status_code == 404
    assert post(site, f"/library/collections/{private}/delete").status_code == 404
    renamed = post(site, f"/library/collections/{private}", {"name": "x", "visibility": "public"})
    assert renamed.status_code == 404
    assert "Secret" not in site.get("/members/ada").text


def test_read_unread_notes_and_search_within_the_library(site: TestClient) -> None:
    sign_up(site, "ada")
    for paper_id in IDS:
        post(site, f"/papers/{paper_id}/save", {"saved": "true"})
    post(site, f"/papers/{IDS[1]}/read", {"read": "true"})
    note = "Read with **care**: <script>alert(1)</script> [x](javascript:alert(1))"
    assert post(site, f"/papers/{IDS[2]}/note", {"note": note}).status_code == 303
    unread = site.get("/library?show=unread").text
    assert "Diffusion for video" not in unread and "Strings and branes" in unread
    assert "Diffusion for video" in site.get("/library?show=read").text
    everything = site.get("/library").text
    assert "<strong>care</strong>" in everything
    assert "<script>alert" not in everything and 'href="javascript' not in everything
    found = site.get("/library", params={"q": "CARE branes"}).text  # words of the note, any case
    assert "Strings and branes" in found and "Graph networks" not in found
    assert "Nothing saved holds" in site.get("/library", params={"q": "zebra"}).text
    too_long = post(site, f"/papers/{IDS[2]}/note", {"note": "x" * 10_001})
    assert too_long.status_code == 422 and "Note is too long" in too_long.text
    assert site.get("/library?show=sideways").status_code == 422


def test_shared_and_public_collections_with_feed_and_exports(site: TestClient) -> None:
    sign_up(site, "ada")
    shared = new_collection(site, "Shared", "link")
    public = new_collection(site, "Public picks", "public")
    for collection_id, paper_id in ((shared, IDS[0]), (public, IDS[1]), (public, IDS[2])):
        post(site, f"/papers/{paper_id}/collections", {"collection": [collection_id]})
    page = site.get(f"/library?collection={public}").text
    link = re.search(r'href="(/c/[A-Za-z0-9_-]+)"', page).group(1)
    shared_link = re.search(
        r'href="(/c/[A-Za-z0-9_-]+)"', site.get(f"/library?collection={shared}").text
    ).group(1)
    post(site, "/signout")
    assert "Strings and branes" in site.get(link).text  # anyone with the address
    assert "Graph networks" in site.get(shared_link).text
    profile = site.get("/members/ADA").text  # the name in any case
    assert "Public picks" in profile and "Shared" not in profile
    feed = feedparser.parse(site.get(f"{link}.atom").text)
    assert feed.feed.title.startswith("Public picks")
    assert {e.title for e in feed.entries} == {"Diffusion for video", "Strings and branes"}
    entries = bibtexparser.parse_string(site.get(f"{link}.bib").text).entries
    assert sorted(e["eprint"] for e in entries) == sorted(IDS[1:])
    assert site.get("/c/not-a-token").status_code == 404
    assert site.get("/members/nobody").status_code == 404
    # made private again, the link answers 404
    sign_up(site, "carol")
    post(site, "/signout")
    from web.test_community import sign_in

    sign_in(site, "ada")
    post(site, f"/library/collections/{public}", {"name": "Public picks", "visibility": "private"})
    assert site.get(link).status_code == 404


def test_library_export_and_members_only_pages(site: TestClient) -> None:
    answer = site.get("/library", follow_redirects=False)
    assert answer.status_code in (303, 307) and "/signin" in answer.headers["location"]
    sign_up(site, "ada")
    for paper_id in IDS:
        post(site, f"/papers/{paper_id}/save", {"saved": "true"})
    bib = site.get("/library.bib")
    assert bib.status_code == 200
    assert len(bibtexparser.parse_string(bib.text).entries) == 3
    assert site.get("/library.pdf").status_code == 404
    # beyond what the tables' INTEGER keys hold (PostgreSQL would refuse to compare): 422
    assert site.get("/library?collection=2147483648").status_code == 422
    assert post(site, "/settings/tokens/2147483648/revoke").status_code == 422
    post(site, "/papers/2401.00002/read", {"read": "true"})
    assert len(bibtexparser.parse_string(site.get("/library.bib?show=read").text).entries) == 1


def test_removing_a_paper_takes_it_out_of_collections_and_deleting_a_collection_keeps_papers(
    site: TestClient, store: Engine
) -> None:
    sign_up(site, "ada")
    first = new_collection(site, "One")
    post(site, f"/papers/{IDS[0]}/collections", {"collection": [first]})
    post(site, f"/papers/{IDS[0]}/save", {"saved": "false"})
    with store.connect() as connection:
        assert connection.execute(select(func.count()).select_from(collection_papers)).scalar() == 0
    post(site, f"/papers/{IDS[1]}/collections", {"collection": [first]})
    assert post(site, f"/library/collections/{first}/delete").status_code == 303
    assert saved_rows(store) == 1
    assert site.get(f"/library?collection={first}").status_code == 404


def test_sharing_a_collection_again_gives_it_a_new_link(site: TestClient) -> None:
    sign_up(site, "ada")
    shared = new_collection(site, "Shared", "link")
    post(site, f"/papers/{IDS[0]}/collections", {"collection": [shared]})

    def link() -> str:
        page = site.get(f"/library?collection={shared}").text
        return re.search(r'href="(/c/[A-Za-z0-9_-]+)"', page).group(1)

    first = link()
    assert site.get(first).status_code == 200
    for visibility in ("private", "link"):
        changed = post(
            site, f"/library/collections/{shared}", {"name": "Shared", "visibility": visibility}
        )
        assert changed.status_code == 303
    second = link()
    assert second != first
    assert site.get(first).status_code == 404  # the old link stays closed
    assert "Graph networks over-smooth" in site.get(second).text
    post(site, f"/library/collections/{shared}", {"name": "Shared", "visibility": "public"})
    assert link() == second  # made public, its link is the same: a wider audience, not a new one


def test_profiles_and_collection_pages_leave_hidden_papers_out_of_counts(
    site: TestClient, store: Engine
) -> None:
    sign_up(site, "ada")
    public = new_collection(site, "Public picks", "public")
    for paper_id in IDS[:2]:
        post(site, f"/papers/{paper_id}/collections", {"collection": [public]})
    with store.begin() as connection:
        connection.execute(
            papers.update().where(papers.c.id == IDS[1]).values(hidden_at=func.now())
        )
    profile = site.get("/members/ada").text
    assert 'Public picks</a> <span class="meta">1 paper</span>' in profile
    link = re.search(r'href="(/c/[A-Za-z0-9_-]+)"', profile).group(1)
    shared = site.get(link).text
    assert "1 paper ·" in shared and "Diffusion for video" not in shared
    assert "Public picks (1)" in site.get("/library").text  # the owner's list counts alike
    # the owner is told how many saved papers were hidden, not left to wonder
    assert "1 of your saved paper was hidden by the site's admins" in site.get("/library").text
    with store.begin() as connection:
        connection.execute(papers.update().where(papers.c.id == IDS[1]).values(hidden_at=None))
    assert 'id="hidden-saved"' not in site.get("/library").text
