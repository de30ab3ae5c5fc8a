"""Following authors (by name, any letter case) and organisations, and their papers' feed."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Engine, func, select, update

from broadsheet.community.accounts import create_member
from broadsheet.community.follows import (
    Kind,
    follow,
    followed,
    following_feed,
    is_following,
)
from broadsheet.community.library import NotFound
from broadsheet.db.schema import followed_authors, papers
from broadsheet.papers.record import Organisation, Paper
from broadsheet.papers.repository import upsert_papers

LAB = Organisation(slug="acme-lab", name="Acme", full_name="Acme Research Lab")


def _paper(paper_id: str, authors: list[str], day: int, organisation=None) -> Paper:
    return Paper(
        id=paper_id,
        title_raw=f"Paper {paper_id}",
        abstract_raw="An abstract.",
        source="test",
        authors=authors,
        published_at=datetime(2024, 1, day),
        organisation=organisation,
    )


@pytest.fixture
def people(store: Engine) -> Engine:
    with store.begin() as connection:
        upsert_papers(
            connection,
            [
                _paper("2401.00001", ["Ada Lovelace", "Alan Turing"], 1),
                _paper("2401.00002", ["Alan Turing"], 3),
                _paper("2401.00003", ["Grace Hopper"], 2, organisation=LAB),
                _paper("2401.00004", ["A. Lovelace"], 4),  # another spelling: another name
                _paper("2401.00005", ["Nobody Followed"], 5),
            ],
        )
    return store


def _ids(engine: Engine, member_id: int, **kwargs) -> list[str]:
    with engine.connect() as connection:
        return [p["id"] for p in following_feed(connection, member_id, **kwargs)]


def test_following_authors_and_organisations_feeds_their_papers_newest_first(
    people: Engine,
) -> None:
    ada = create_member(people, "reader", "long enough password")
    follow(people, ada, Kind.author, "ada lovelace")  # any letter case finds the stored name
    follow(people, ada, Kind.author, "Ada Lovelace")  # twice: one row
    follow(people, ada, Kind.organisation, "ACME-LAB")
    with people.connect() as connection:
        assert connection.execute(select(func.count()).select_from(followed_authors)).scalar() == 1
        assert is_following(connection, ada, Kind.author, "ADA LOVELACE")
        assert not is_following(connection, ada, Kind.author, "Alan Turing")
        assert not is_following(connection, None, Kind.author, "Ada Lovelace")
        assert [(f.kind, f.name, f.label) for f in followed(connection, ada.id)] == [
            (Kind.author, "Ada Lovelace", "Ada Lovelace"),
            (Kind.organisation, "acme-lab", "Acme Research Lab"),
        ]
    # "A. Lovelace" is another name: not followed
    assert _ids(people, ada.id) == ["2401.00003", "2401.00001"]
    assert _ids(people, ada.id, since=datetime(2024, 1, 2)) == ["2401.00003"]
    assert _ids(people, ada.id, limit=1, offset=1) == ["2401.00001"]
    follow(people, ada, Kind.author, "Alan Turing")
    assert _ids(people, ada.id) == ["2401.00002", "2401.00003", "2401.00001"]  # no repeats
    with people.begin() as connection:
        connection.execute(
            update(papers).where(papers.c.id == "2401.00002").values(hidden_at=datetime(2024, 2, 1))
        )
    assert "2401.00002" not in _ids(people, ada.id)
    follow(people, ada, Kind.organisation, "acme-lab", followed=False)
    assert _ids(people, ada.id) == ["2401.00001"]


def test_unknown_authors_and_organisations_cannot_be_followed(people: Engine) -> None:
    ada = create_member(people, "reader", "long enough password")
    with pytest.raises(NotFound, match="No author"):
        follow(people, ada, Kind.author, "Nobody Here")
    with pytest.raises(NotFound, match="No organisation"):
        follow(people, ada, Kind.organisation, "nowhere")
    with pytest.raises(NotFound):
        follow(people, ada, Kind.author, "x" * 400)
    assert _ids(people, ada.id) == []
