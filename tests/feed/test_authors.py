"""Author pages: an author's visible papers, newest first, and who they wrote them with."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Engine, event, update

from broadsheet.db.schema import papers
from broadsheet.feed.authors import author_page, find_author
from broadsheet.papers.record import Paper
from broadsheet.papers.repository import upsert_papers


def add(store: Engine, paper_id: str, day: int, authors: list[str], abstract: str = "") -> None:
    paper = Paper(
        id=paper_id,
        title_raw=f"Paper {paper_id}",
        abstract_raw=abstract or f"About {paper_id}.",
        source="test",
        authors=authors,
        published_at=datetime(2024, 1, day, 9),
    )
    with store.begin() as connection:
        upsert_papers(connection, [paper])


def hide(store: Engine, paper_id: str) -> None:
    with store.begin() as connection:
        connection.execute(
            update(papers).where(papers.c.id == paper_id).values(hidden_at=datetime(2024, 2, 1))
        )


def seed(store: Engine) -> None:
    add(store, "2401.00001", 2, ["Denny Zhou", "Quoc V. Le"])
    add(store, "2401.00002", 5, ["Xinyun Chen", "Denny Zhou", "Quoc V. Le"])
    add(store, "2401.00003", 9, ["Denny Zhou", "Hidden Coauthor"])
    add(store, "2401.00004", 3, ["Someone Else"])
    hide(store, "2401.00003")


def test_papers_newest_first_with_coauthors_by_count(store: Engine) -> None:
    seed(store)
    with store.connect() as connection:
        page = author_page(connection, "Denny Zhou")
    assert page is not None and page.name == "Denny Zhou"
    assert [p["id"] for p in page.papers] == ["2401.00002", "2401.00001"]
    assert page.total == 2  # the hidden paper is neither listed nor counted
    assert page.coauthors == [("Quoc V. Le", 2), ("Xinyun Chen", 1)]
    assert all("author_count" in p for p in page.papers)  # bounded cards, as lists show them


def test_pages_and_letter_case(store: Engine) -> None:
    seed(store)
    with store.connect() as connection:
        second = author_page(connection, "denny ZHOU", limit=1, offset=1)
        assert second is not None and second.name == "Denny Zhou"
        assert [p["id"] for p in second.papers] == ["2401.00001"] and second.total == 2
        assert author_page(connection, "Nobody Here") is None
        assert author_page(connection, "") is None


def test_find_author_by_exact_or_caseless_name(store: Engine) -> None:
    seed(store)
    add(store, "2401.00005", 4, ["Łukasz Kaiser", "AC/DC Group"])
    with store.connect() as connection:
        assert find_author(connection, "Denny Zhou").name == "Denny Zhou"
        assert find_author(connection, "  denny zhou ").name == "Denny Zhou"
        assert find_author(connection, "Łukasz Kaiser").name == "Łukasz Kaiser"
        assert find_author(connection, "ac/dc group").name == "AC/DC Group"
        assert find_author(connection, "Denny") is None
        assert find_author(connection, "x" * 10_000) is None


def test_an_author_of_only_hidden_papers_is_not_shown(store: Engine) -> None:
    seed(store)
    with store.connect() as connection:
        assert author_page(connection, "Hidden Coauthor") is None
        assert find_author(connection, "Hidden Coauthor") is None


def test_a_caseless_look_up_reads_the_name_index_not_every_author(store: Engine) -> None:
    """Search asks for an author named like the query on every search: on a store of a
    million papers a scan of the authors costs more than the rest of the search."""
    if store.dialect.name != "sqlite":
        pytest.skip("SQLite's query plan (PostgreSQL ORs the index ranges itself)")
    seed(store)
    statements: list[tuple[str, tuple]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append((statement, parameters))

    event.listen(store, "before_cursor_execute", record)
    try:
        with store.connect() as connection:
            assert find_author(connection, "quoc v. le").name == "Quoc V. Le"
    finally:
        event.remove(store, "before_cursor_execute", record)
    with store.connect() as connection:
        plans = [
            " / ".join(
                row[3] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", args)
            )
            for sql, args in statements
            if "FROM authors" in sql
        ]
    assert len(plans) == 2  # the exact name, then the caseless one
    assert not any("SCAN authors" in plan for plan in plans), plans
