"""The library's rules on both engines: idempotent saves, collections all or nothing, limits."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, delete, func, select

from broadsheet.community import library as lib
from broadsheet.community.accounts import Member, create_member
from broadsheet.community.library import (
    LibraryError,
    NotFound,
    Shown,
    Visibility,
    create_collection,
    library,
    member_collections,
    remove_paper,
    save_paper,
    set_note,
    set_paper_collections,
    set_read,
    shared_collection,
    update_collection,
)
from broadsheet.community.marks import marked_papers
from broadsheet.db.schema import collection_papers, collections, saved_papers


def _member(store: Engine, name: str = "ada") -> Member:
    return create_member(store, name, "long enough password")


def _count(store: Engine, table) -> int:
    with store.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def test_saving_twice_or_at_once_keeps_one_row(papers_store: Engine) -> None:
    ada = _member(papers_store)
    save_paper(papers_store, ada, "2401.00001")
    save_paper(papers_store, ada, "2401.00001")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: save_paper(papers_store, ada, "2401.00002"), range(16)))
    assert _count(papers_store, saved_papers) == 2
    with papers_store.connect() as connection:
        shown = ["2401.00001", "2499.1"]
        assert marked_papers(connection, saved_papers, ada, shown) == {"2401.00001"}
        assert marked_papers(connection, saved_papers, None, ["2401.00001"]) == set()


def test_a_missing_or_hidden_paper_cannot_be_saved(
    papers_store: Engine, hide: Callable[[str], None]
) -> None:
    ada = _member(papers_store)
    with pytest.raises(NotFound):
        save_paper(papers_store, ada, "2499.99999")
    hide("2401.00002")
    with pytest.raises(NotFound):
        save_paper(papers_store, ada, "2401.00002")


def test_a_refused_collection_change_writes_nothing(papers_store: Engine) -> None:
    ada, bob = _member(papers_store), _member(papers_store, "bob")
    bobs = create_collection(papers_store, bob, "Bob's")
    with pytest.raises(NotFound):  # Bob's collection is not Ada's: no new one, no save
        set_paper_collections(papers_store, ada, "2401.00001", [bobs.id], "New one")
    assert [c.name for c in member_collections_of(papers_store, ada)] == []
    assert _count(papers_store, saved_papers) == 0
    with pytest.raises(LibraryError, match="Collection name is too long"):
        set_paper_collections(papers_store, ada, "2401.00001", [], "x" * 81)
    assert _count(papers_store, saved_papers) == 0


def member_collections_of(store: Engine, member: Member):
    with store.connect() as connection:
        return member_collections(connection, member.id)


def test_collections_move_the_paper_exactly_and_removal_cascades(papers_store: Engine) -> None:
    ada = _member(papers_store)
    one = create_collection(papers_store, ada, "One")
    two = create_collection(papers_store, ada, "Two")
    assert set_paper_collections(papers_store, ada, "2401.00001", [one.id, two.id]) == sorted(
        [one.id, two.id]
    )
    assert set_paper_collections(papers_store, ada, "2401.00001", [two.id]) == [two.id]
    counts = {c.name: c.papers for c in member_collections_of(papers_store, ada)}
    assert counts == {"One": 0, "Two": 1}
    remove_paper(papers_store, ada, "2401.00001")
    assert _count(papers_store, collection_papers) == 0 and _count(papers_store, saved_papers) == 0


def test_read_unread_notes_and_the_filters(papers_store: Engine) -> None:
    ada = _member(papers_store)
    set_read(papers_store, ada, "2401.00001", True)  # saves it too
    set_note(papers_store, ada, "2401.00002", "  *Why* this matters\x00  ")
    with papers_store.connect() as connection:
        assert [e.paper["id"] for e in library(connection, ada, Shown.read)] == ["2401.00001"]
        [unread] = library(connection, ada, Shown.unread)
        assert unread.paper["id"] == "2401.00002"
        assert unread.note == "*Why* this matters"
        assert unread.note_html == "<p><em>Why</em> this matters</p>\n"
        assert [e.paper["id"] for e in library(connection, ada, query="WHY")] == ["2401.00002"]
    set_note(papers_store, ada, "2401.00002", "   ")  # an empty note clears it
    with papers_store.connect() as connection:
        assert all(e.note is None for e in library(connection, ada))
    set_read(papers_store, ada, "2401.00001", False)
    with papers_store.connect() as connection:
        assert library(connection, ada, Shown.read) == []


def test_names_are_one_per_member_in_any_case_and_bounded(papers_store: Engine) -> None:
    ada, bob = _member(papers_store), _member(papers_store, "bob")
    create_collection(papers_store, ada, "  Reading   group ")
    with pytest.raises(LibraryError, match="taken"):
        create_collection(papers_store, ada, "READING GROUP")
    create_collection(papers_store, bob, "Reading group")  # another member's is another name
    other = create_collection(papers_store, ada, "Other")
    with pytest.raises(LibraryError, match="taken"):
        update_collection(papers_store, ada, other.id, name="reading group")
    with pytest.raises(NotFound):
        update_collection(papers_store, bob, other.id, name="mine now")


def test_a_member_keeps_at_most_so_many_collections(
    papers_store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lib, "MAX_COLLECTIONS", 2)
    ada = _member(papers_store)
    create_collection(papers_store, ada, "a")
    create_collection(papers_store, ada, "b")
    with pytest.raises(LibraryError, match="Too many collections"):
        create_collection(papers_store, ada, "c")


def test_sharing_follows_visibility(papers_store: Engine) -> None:
    ada = _member(papers_store)
    made = create_collection(papers_store, ada, "Picks")
    with papers_store.connect() as connection, pytest.raises(NotFound):
        shared_collection(connection, made.share_token)
    shared = update_collection(papers_store, ada, made.id, visibility=Visibility.link)
    with papers_store.connect() as connection:
        assert shared_collection(connection, shared.share_token).owner == "ada"
    assert len(shared.share_token) >= 20  # unguessable
    # shared, it gets a link of its own: the token it had while private never opens it
    assert shared.share_token != made.share_token


def test_deleting_the_member_deletes_their_library(papers_store: Engine) -> None:
    from broadsheet.db.schema import users

    ada = _member(papers_store)
    made = create_collection(papers_store, ada, "Picks")
    set_paper_collections(papers_store, ada, "2401.00001", [made.id])
    with papers_store.begin() as connection:
        connection.execute(delete(users).where(users.c.id == ada.id))
    for table in (saved_papers, collections, collection_papers):
        assert _count(papers_store, table) == 0
