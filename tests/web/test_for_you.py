"""The "for you" pages and 👎 over HTTP (the ranking itself: tests/feed/test_for_you.py)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from broadsheet.db.schema import collection_papers, dismissed_papers, saved_papers, votes
from web.test_community import sign_up
from web.test_library import IDS, post
from web.test_library import site as site


def _count(store: Engine, table) -> int:
    with store.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def test_not_interested_toggles_in_place_and_is_for_members(
    site: TestClient, store: Engine
) -> None:
    assert "Not interested" not in site.get("/").text
    sign_up(site, "ada")
    assert site.get("/").text.count('class="ghost small dismiss-button"') == 3
    answer = post(site, f"/papers/{IDS[0]}/dismiss", {"dismissed": "true"}, htmx=True)
    assert answer.status_code == 200 and "Dismissed" in answer.text
    assert 'aria-pressed="true"' in answer.text
    post(site, f"/papers/{IDS[0]}/dismiss", {"dismissed": "true"}, htmx=True)  # twice: one row
    assert _count(store, dismissed_papers) == 1
    assert "Dismissed" in site.get("/").text
    undone = post(site, f"/papers/{IDS[0]}/dismiss", {"dismissed": "false"})
    assert undone.status_code == 303 and _count(store, dismissed_papers) == 0
    assert post(site, "/papers/2499.99999/dismiss").status_code == 404


def test_for_you_without_vectors_says_why_and_is_for_members(site: TestClient) -> None:
    answer = site.get("/for-you", follow_redirects=False)
    assert answer.status_code in (303, 307) and "/signin" in answer.headers["location"]
    sign_up(site, "ada")
    assert "Upvote or save a few papers" in site.get("/for-you").text
    post(site, f"/papers/{IDS[0]}/save", {"saved": "true"})
    page = site.get("/for-you").text
    assert "has embedded them" in page  # no vectors in this store
    assert site.get("/for-you?page=0").status_code == 422


def test_each_signal_can_be_removed(site: TestClient, store: Engine) -> None:
    sign_up(site, "ada")
    post(site, f"/papers/{IDS[0]}/vote")
    post(site, f"/papers/{IDS[1]}/save", {"saved": "true"})
    post(site, f"/papers/{IDS[2]}/dismiss", {"dismissed": "true"})
    listing = site.get("/for-you/signals").text
    for title in ("Graph networks over-smooth", "Diffusion for video", "Strings and branes"):
        assert title in listing
    for paper_id, kind in ((IDS[0], "upvoted"), (IDS[1], "saved"), (IDS[2], "dismissed")):
        answer = post(site, "/for-you/signals/remove", {"paper_id": paper_id, "kind": kind})
        assert answer.status_code == 303
    assert (
        _count(store, votes) == _count(store, saved_papers) == _count(store, dismissed_papers) == 0
    )
    assert site.get("/for-you/signals").text.count("None.") == 3
    bad = post(site, "/for-you/signals/remove", {"paper_id": IDS[0], "kind": "everything"})
    assert bad.status_code == 422


def test_the_feed_offers_a_for_you_sort_to_members_only(site: TestClient) -> None:
    assert "sort=for_you" not in site.get("/?date=2024-01-10").text
    anonymous = site.get("/?date=2024-01-10&sort=for_you")
    assert anonymous.status_code == 200 and "Graph networks over-smooth" in anonymous.text
    sign_up(site, "ada")
    page = site.get("/?date=2024-01-10&sort=for_you").text
    assert "sort=for_you" in page and "meanwhile it is trending" in page
    assert site.get("/?sort=sideways").status_code == 422


def test_removing_an_upvote_signal_keeps_the_paper_saved_with_its_note_and_collections(
    site: TestClient, store: Engine
) -> None:
    sign_up(site, "ada")
    made = post(site, "/library/collections", {"name": "Keep", "visibility": "private"})
    keep = int(made.headers["location"].rsplit("=", 1)[1])
    post(site, f"/papers/{IDS[0]}/vote")
    post(site, f"/papers/{IDS[0]}/collections", {"collection": [keep]})
    post(site, f"/papers/{IDS[0]}/note", {"note": "my thoughts"})
    answer = post(site, "/for-you/signals/remove", {"paper_id": IDS[0], "kind": "upvoted"})
    assert answer.status_code == 303
    assert _count(store, votes) == 0  # what the action names goes
    with store.connect() as connection:  # and nothing else
        [entry] = connection.execute(select(saved_papers)).all()
        in_collections = connection.execute(select(func.count()).select_from(collection_papers))
        assert entry.note == "my thoughts" and in_collections.scalar_one() == 1
    assert "Graph networks over-smooth" in site.get("/for-you/signals").text  # still saved
