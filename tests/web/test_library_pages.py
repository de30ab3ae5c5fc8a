"""Lists a member builds stay bounded per request: a long library, collection, profile,
follows and signals are paged, downloads stream, and shared pages are limited per address."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import bibtexparser
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select

from broadsheet.community.accounts import find_member
from broadsheet.community.library import PAGE, SHARED_VIEWS, Visibility, create_collection
from broadsheet.config import Settings
from broadsheet.db.keyset import BATCH
from broadsheet.db.schema import authors, collection_papers, followed_authors, saved_papers
from broadsheet.papers.record import FeedPlacement, Paper
from broadsheet.papers.repository import upsert_papers
from broadsheet.web.app import create_app
from web.test_account_data import make_token
from web.test_community import sign_up

MANY = 2 * BATCH + 50  # more than two batches of a download
AUTHORS = 55


def _paper(n: int) -> Paper:
    return Paper(
        id=f"2401.{n:05d}",
        # one title, author and year for all: every citation key repeats across batches
        title_raw="Über graphs" if n == 7 else "Graph networks",
        abstract_raw=f"Abstract number {n}, 100% synthetic.",
        source="test",
        authors=["Ada Lovelace", f"Coauthor{n % AUTHORS}"],
        published_at=datetime(2024, 1, 10, 9),
        feed=FeedPlacement(day=date(2024, 1, 10), source="test"),
    )


@pytest.fixture
def site(store: Engine, database_url: str) -> Iterator[TestClient]:
    with store.begin() as connection:
        upsert_papers(connection, [_paper(n) for n in range(1, MANY + 1)])
    with TestClient(create_app(Settings(database_url=database_url, secret_key="t"))) as client:
        yield client


def _fill(store: Engine, collection_id: int, member_id: int) -> None:
    """Every paper saved and in the collection (paper 1 newest), and every coauthor followed."""
    start = datetime(2025, 1, 1)
    ids = [f"2401.{n:05d}" for n in range(1, MANY + 1)]
    with store.begin() as connection:
        connection.execute(
            insert(saved_papers),
            [
                {"user_id": member_id, "paper_id": p, "saved_at": start - timedelta(seconds=i)}
                for i, p in enumerate(ids)
            ],
        )
        connection.execute(
            insert(collection_papers),
            [
                {"collection_id": collection_id, "paper_id": p, "added_at": start}
                for p in ids  # added at one moment: the id orders them
            ],
        )
        coauthors = connection.execute(
            select(authors.c.id).where(authors.c.name.like("Coauthor%"))
        ).scalars()
        connection.execute(
            insert(followed_authors),
            [{"user_id": member_id, "author_id": a, "created_at": start} for a in coauthors],
        )


def _cards(html: str) -> list[str]:
    return re.findall(r'<article class="card" id="paper-([^"]+)"', html)


def _member(site: TestClient, store: Engine):
    sign_up(site, "ada")
    with store.connect() as connection:
        return find_member(connection, "ada")


def test_a_long_library_and_collection_are_paged(site: TestClient, store: Engine) -> None:
    member = _member(site, store)
    public = create_collection(store, member, "Everything", Visibility.public)
    _fill(store, public.id, member.id)
    first = site.get("/library").text
    assert _cards(first) == [f"2401.{n:05d}" for n in range(1, PAGE + 1)]
    assert f"{MANY} papers" in first and 'href="/library?page=2"' in first
    last_page = -(-MANY // PAGE)
    last = site.get(f"/library?page={last_page}").text
    assert len(_cards(last)) == MANY - (last_page - 1) * PAGE
    beyond = site.get(f"/library?page={last_page + 1}").text
    assert _cards(beyond) == [] and "past the last page" in beyond
    chosen = site.get(f"/library?collection={public.id}&page=2").text
    assert len(_cards(chosen)) == PAGE and f"collection={public.id}&amp;page=3" in chosen
    # search runs in the store: any letter case, in an abstract, "%" taken as a letter
    assert _cards(site.get("/library", params={"q": "ÜBER"}).text) == ["2401.00007"]
    assert _cards(site.get("/library", params={"q": "NUMBER 1012,"}).text) == ["2401.01012"]
    assert len(_cards(site.get("/library", params={"q": "100%"}).text)) == PAGE
    assert _cards(site.get("/library", params={"q": "1%0"}).text) == []
    shared = site.get(f"/c/{public.share_token}").text
    assert len(_cards(shared)) == PAGE and f"{MANY} papers" in shared
    assert f'href="/c/{public.share_token}?page=2"' in shared
    entries = site.get(f"/c/{public.share_token}.atom").text.count("<entry>")
    assert entries == 50


def test_downloads_stream_every_paper_with_unique_keys(site: TestClient, store: Engine) -> None:
    member = _member(site, store)
    link = create_collection(store, member, "Linked", Visibility.link)
    _fill(store, link.id, member.id)
    for path in ("/library.bib", f"/c/{link.share_token}.bib"):
        answer = site.get(path)
        assert answer.status_code == 200 and "content-length" not in answer.headers  # streamed
        keys = [entry.key for entry in bibtexparser.parse_string(answer.text).entries]
        assert len(keys) == MANY and len(set(keys)) == MANY, path
    ris = site.get(f"/library.ris?collection={link.id}").text
    assert ris.count("ER  -") == MANY
    export = site.get("/settings/export")
    assert "content-length" not in export.headers
    data = json.loads(export.text)
    assert len(data["library"]) == MANY and len(data["collections"][0]["papers"]) == MANY
    assert len(data["following"]) == AUTHORS
    token = make_token(site, "script")
    api = site.get("/api/me/export", headers={"Authorization": f"Bearer {token}"}).json()
    assert api["library"] == data["library"]


def test_the_member_api_pages_its_lists(site: TestClient, store: Engine) -> None:
    member = _member(site, store)
    made = create_collection(store, member, "One", Visibility.private)
    _fill(store, made.id, member.id)
    auth = {"Authorization": f"Bearer {make_token(site, 'script')}"}
    got = site.get("/api/me/library", headers=auth).json()
    assert len(got) == 100 and got[0]["paper"]["id"] == "2401.00001"
    tail = site.get(f"/api/me/library?limit=500&offset={MANY - 10}", headers=auth).json()
    assert len(tail) == 10 and tail[-1]["paper"]["id"] == f"2401.{MANY:05d}"
    assert site.get("/api/me/library?limit=501", headers=auth).status_code == 422
    assert len(site.get("/api/me/following?limit=50", headers=auth).json()) == 50
    rest = site.get("/api/me/following?limit=50&offset=50", headers=auth).json()
    assert len(rest) == AUTHORS - 50
    assert site.get("/api/me/collections?offset=1", headers=auth).json() == []
    spec = site.get("/openapi.json").json()["paths"]["/api/me/library"]["get"]
    limit = next(p for p in spec["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 500 and "last page" in limit["description"]


def test_profiles_follows_and_signals_are_paged(site: TestClient, store: Engine) -> None:
    member = _member(site, store)
    made = create_collection(store, member, "Saved", Visibility.private)
    _fill(store, made.id, member.id)
    for n in range(PAGE + 1):
        create_collection(store, member, f"Public {n:02d}", Visibility.public)
    profile = site.get("/members/ada").text
    assert profile.count('href="/c/') == PAGE and 'href="/members/ada?page=2"' in profile
    assert site.get("/members/ada?page=2").text.count('href="/c/') == 1
    following = site.get("/following").text
    assert following.count('class="meta">author</span>') == 50
    assert 'href="/following?people=2"' in following
    more = site.get("/following?people=2&page=2").text
    assert more.count('class="meta">author</span>') == AUTHORS - 50
    assert 'href="/following?page=3&amp;people=2"' in more  # each list keeps the other's page
    signals = site.get("/for-you/signals").text
    assert signals.count('value="saved"') == 50 and 'href="/for-you/signals?saved=2"' in signals


def test_shared_collections_are_limited_per_client_address(site: TestClient, store: Engine) -> None:
    member = _member(site, store)
    public = create_collection(store, member, "Open", Visibility.public)
    site.cookies.clear()  # a visitor
    paths = [f"/c/{public.share_token}", f"/c/{public.share_token}.atom"]
    for n in range(SHARED_VIEWS.hits):
        assert site.get(paths[n % 2]).status_code == 200
    refused = site.get(paths[0])
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "Too many" in refused.text and "<footer" in refused.text  # the site's layout
    assert site.get(f"/c/{public.share_token}.bib").status_code == 429
    assert site.get("/c/guessed-token").status_code == 429  # guessing counts too
