"""Ids of members, collections, tokens, comments and subscribers are never handed out twice,
on either engine: sessions, links and counters name them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, insert

from broadsheet.community.accounts import create_member
from broadsheet.community.api_tokens import create_token
from broadsheet.community.library import create_collection
from broadsheet.db.schema import api_tokens, collections, comments, papers, subscribers, users
from broadsheet.papers.record import Paper
from broadsheet.papers.repository import upsert_papers

PASSWORD = "long enough password"
NOW = datetime(2026, 12, 7)


def _newest_deleted_then_made_again(store: Engine, table, make) -> tuple[int, int]:
    first = make(1)
    with store.begin() as connection:
        connection.execute(delete(table).where(table.c.id == first))
    return first, make(2)


def test_a_deleted_newest_row_never_gives_its_id_to_the_next(store: Engine) -> None:
    with store.begin() as connection:
        upsert_papers(connection, [Paper("2401.00001", "Title", "Abstract.", "test")])
    owner = create_member(store, "owner", PASSWORD)

    def member(n: int) -> int:
        return create_member(store, f"member{n}", PASSWORD).id

    def collection(n: int) -> int:
        return create_collection(store, owner, f"Reading {n}").id

    def token(n: int) -> int:
        return create_token(store, owner, f"script {n}")[0].id

    def comment(n: int) -> int:
        with store.begin() as connection:
            return connection.execute(
                insert(comments)
                .values(paper_id="2401.00001", user_id=owner.id, body=f"#{n}", created_at=NOW)
                .returning(comments.c.id)
            ).scalar_one()

    def subscriber(n: int) -> int:
        with store.begin() as connection:
            return connection.execute(
                insert(subscribers)
                .values(email=f"s{n}@example.org", status="pending", created_at=NOW)
                .returning(subscribers.c.id)
            ).scalar_one()

    for table, make in [
        (users, member),
        (collections, collection),
        (api_tokens, token),
        (comments, comment),
        (subscribers, subscriber),
    ]:
        first, second = _newest_deleted_then_made_again(store, table, make)
        assert second > first, table.name
    with store.connect() as connection:
        assert connection.execute(papers.select()).first() is not None
