"""0018 keeps every member and what hangs off them while it rebuilds tables (SQLite), gives each
member a session key of their own, and folds collection names that SQLite's lower() left
apart."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import MetaData, delete, func, insert, inspect, select

from broadsheet.db.engine import alembic_config, make_engine, migrate
from databases import drop_database, new_database_url

NOW = datetime(2026, 12, 6)


@pytest.fixture
def empty_url(tmp_path: Path) -> Iterator[str]:
    url = new_database_url(tmp_path, "old", migrated=False)
    yield url
    drop_database(url)


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_members_votes_collections_and_comments_survive_and_ids_stay_unique(
    empty_url: str,
) -> None:
    engine = make_engine(empty_url)
    command.upgrade(alembic_config(engine), "0017")
    old = MetaData()
    names = ["users", "papers", "votes", "comments", "collections", "collection_papers"]
    old.reflect(engine, only=names)
    users, papers, votes, comments, collections, collection_papers = (old.tables[n] for n in names)
    with engine.begin() as connection:
        for name in ["ada", "bob", "cy"]:  # ids 1, 2, 3
            connection.execute(
                insert(users).values(username=name, password_hash="x", created_at=NOW)
            )
        connection.execute(
            insert(papers).values(
                seq=1, id="2401.00001", title="T", title_raw="T", abstract="A", abstract_raw="A",
                authors=[], categories="", links={}, upvotes=0, source="test",
                record_hash="h", created_at=NOW, modified_at=NOW,
            )
        )  # fmt: skip
        connection.execute(insert(votes).values(user_id=1, paper_id="2401.00001", created_at=NOW))
        connection.execute(
            insert(comments).values(paper_id="2401.00001", user_id=1, body="Hi", created_at=NOW)
        )
        # "STRASSE" and "Straße" are one name folded, two to lower() on either engine
        for number, name in enumerate(["Straße", "STRASSE", "Статьи"], 1):  # ids 1, 2, 3
            connection.execute(
                insert(collections).values(
                    user_id=2, name=name, visibility="private",
                    share_token=f"t{number}", created_at=NOW,
                )
            )  # fmt: skip
        connection.execute(
            insert(collection_papers).values(collection_id=2, paper_id="2401.00001", added_at=NOW)
        )
        connection.execute(delete(users).where(users.c.id == 3))  # the newest goes
    migrate(engine)
    new = MetaData()
    new.reflect(engine, only=names)
    users, votes, comments, collections, collection_papers = (
        new.tables[n] for n in ["users", "votes", "comments", "collections", "collection_papers"]
    )
    assert "session_epoch" not in {c["name"] for c in inspect(engine).get_columns("users")}
    with engine.begin() as connection:
        keys = connection.execute(select(users.c.session_key)).scalars().all()
        assert len(keys) == 2 and len(set(keys)) == 2 and all(len(k) >= 32 for k in keys)
        for table in (votes, comments, collection_papers):
            assert connection.execute(select(func.count()).select_from(table)).scalar() == 1
        named = dict(connection.execute(select(collections.c.id, collections.c.name)).all())
        assert named == {1: "Straße", 2: "STRASSE (2)", 3: "Статьи"}
        made = connection.execute(
            insert(users)
            .values(username="dee", password_hash="x", created_at=NOW, session_key="k" * 32)
            .returning(users.c.id)
        ).scalar_one()
        connection.execute(delete(users).where(users.c.id == made))
        again = connection.execute(
            insert(users)
            .values(username="eve", password_hash="x", created_at=NOW, session_key="e" * 32)
            .returning(users.c.id)
        ).scalar_one()
        assert again > made  # (SQLite may give an id freed before the upgrade once: not after)
    migrate(engine)  # again: nothing to do
    engine.dispose()
