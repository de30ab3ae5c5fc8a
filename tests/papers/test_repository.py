"""Upserts: added / updated / unchanged, version rules, link tables, feed entries, rollback."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import Engine, func, select

from broadsheet.db.schema import authors, feed_entries, paper_authors, paper_categories, papers
from broadsheet.papers.record import FeedPlacement, Organisation, Paper
from broadsheet.papers.repository import get_paper, store_stats, upsert_papers


def make_paper(paper_id: str = "2401.01234", **overrides) -> Paper:
    fields = dict(
        id=paper_id,
        title_raw="A  title\n  wrapped",
        abstract_raw="An $\\alpha$ abstract.",
        source="test",
        version=1,
        authors=["Ada Lovelace", "Alan Turing"],
        categories=["cs.LG", "stat.ML"],
        published_at=datetime(2024, 1, 2, 10, 0),
    )
    fields.update(overrides)
    return Paper(**fields)


def upsert(store: Engine, *batch: Paper):
    with store.begin() as connection:
        return upsert_papers(connection, list(batch))


def count(store: Engine, table) -> int:
    with store.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def test_add_then_unchanged(store: Engine) -> None:
    counts = upsert(store, make_paper())
    assert (counts.added, counts.updated, counts.unchanged) == (1, 0, 0)
    counts = upsert(store, make_paper())
    assert (counts.added, counts.updated, counts.unchanged) == (0, 0, 1)
    assert count(store, papers) == 1
    with store.connect() as connection:
        paper = get_paper(connection, "2401.01234")
    assert paper["title"] == "A title wrapped"
    assert paper["title_raw"] == "A  title\n  wrapped"
    assert paper["abstract"] == "An α abstract."
    assert paper["authors"] == ["Ada Lovelace", "Alan Turing"]
    assert paper["primary_category"] == "cs.LG"
    assert paper["categories"] == "cs.LG stat.ML"


def test_newer_version_updates_and_older_does_not(store: Engine) -> None:
    upsert(store, make_paper(version=2, title_raw="Second version"))
    counts = upsert(store, make_paper(version=1, title_raw="First version"))
    with store.connect() as connection:
        assert get_paper(connection, "2401.01234")["title"] == "Second version"
    assert counts.unchanged == 1
    counts = upsert(
        store, make_paper(version=3, title_raw="Third version", authors=["Grace Hopper"])
    )
    assert counts.updated == 1
    with store.connect() as connection:
        paper = get_paper(connection, "2401.01234")
        assert (paper["title"], paper["version"]) == ("Third version", 3)
        names = (
            connection.execute(
                select(authors.c.name)
                .join(paper_authors)
                .where(paper_authors.c.paper_id == "2401.01234")
                .order_by(paper_authors.c.position)
            )
            .scalars()
            .all()
        )
    assert names == ["Grace Hopper"]


def test_versionless_source_fills_gaps_without_erasing(store: Engine) -> None:
    upsert(store, make_paper(doi="10.1/x", comment="12 pages"))
    counts = upsert(
        store,
        make_paper(
            version=None,
            upvotes=42,
            doi=None,
            comment=None,
            links={"code": "https://github.com/x/y"},
        ),
    )
    assert counts.updated == 1
    with store.connect() as connection:
        paper = get_paper(connection, "2401.01234")
    assert (paper["doi"], paper["comment"], paper["upvotes"]) == ("10.1/x", "12 pages", 42)
    assert paper["links"] == {"code": "https://github.com/x/y"}
    assert paper["version"] == 1


def test_authors_and_categories_tables(store: Engine) -> None:
    upsert(store, make_paper("2401.00001"), make_paper("2401.00002", authors=["Ada Lovelace"]))
    assert count(store, authors) == 2  # Ada is one author of two papers
    assert count(store, paper_authors) == 3
    assert count(store, paper_categories) == 4


def test_organisation_and_feed_placement_once_per_day(store: Engine) -> None:
    org = Organisation("cartesia-ai", "cartesia-ai", "Cartesia AI")
    feed = FeedPlacement(date(2024, 1, 3), "daily_papers")
    upsert(store, make_paper(organisation=org, feed=feed))
    upsert(store, make_paper(organisation=org, feed=feed))
    upsert(store, make_paper(feed=FeedPlacement(date(2024, 1, 4), "daily_papers")))
    with store.connect() as connection:
        paper = get_paper(connection, "2401.01234")
        days = (
            connection.execute(select(feed_entries.c.day).order_by(feed_entries.c.day))
            .scalars()
            .all()
        )
        stats = store_stats(connection)
    assert paper["organisation_full_name"] == "Cartesia AI"
    assert days == [date(2024, 1, 3), date(2024, 1, 4)]
    assert (stats.papers, stats.organisations, stats.feed_entries, stats.feed_days) == (1, 1, 2, 2)


def test_same_paper_twice_in_one_batch_merges(store: Engine) -> None:
    counts = upsert(store, make_paper(version=1), make_paper(version=2, title_raw="Newer"))
    assert counts.added == 1
    with store.connect() as connection:
        assert get_paper(connection, "2401.01234")["title"] == "Newer"


def test_failed_batch_leaves_nothing_half_written(store: Engine, monkeypatch) -> None:
    from broadsheet.papers import repository

    def failing(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(repository, "_replace_links", failing)
    with pytest.raises(RuntimeError), store.begin() as connection:
        upsert_papers(connection, [make_paper("2401.00001"), make_paper("2401.00002")])
    assert count(store, papers) == 0
    assert count(store, authors) == 0


def test_stored_display_fields_hold_no_control_characters(store: Engine) -> None:
    """Display columns are cleaned; the raw columns keep what came."""
    dirty = "\x01Bad\x02\x1b[1m text\x85\ufffe"
    paper = make_paper(
        title_raw=dirty,
        abstract_raw=f"An{dirty}",
        authors=[f"Ada{dirty}"],
        categories=["cs.LG\x00"],
        comment=dirty,
        doi=f"10.1/x{dirty}",
        journal_ref=dirty,
        report_no=dirty,
        license=dirty,
        links={"code": f"https://x.org/{dirty}"},
        organisation=Organisation("org\x01", f"Org{dirty}", dirty),
        feed=FeedPlacement(date(2024, 1, 3), "daily_papers", f"user{dirty}"),
    )
    upsert(store, paper)
    with store.connect() as connection:
        stored = get_paper(connection, "2401.01234")
        submitter = connection.execute(select(feed_entries.c.submitted_by)).scalar_one()
        category = connection.execute(select(paper_categories.c.category)).scalar_one()
    assert stored["title"] == "Bad[1m text"
    assert stored["title_raw"] == dirty
    assert stored["abstract_raw"] == f"An{dirty}"
    assert stored["authors"] == ["AdaBad[1m text"]
    values = [
        *(stored[name] for name in ("abstract", "comment", "doi", "journal_ref", "report_no")),
        *(stored[name] for name in ("license", "categories", "primary_category")),
        *stored["links"].values(),
        *(stored[name] for name in ("organisation_slug", "organisation_name")),
        stored["organisation_full_name"],
        submitter,
        category,
    ]
    for value in values:
        assert value.isprintable(), value
