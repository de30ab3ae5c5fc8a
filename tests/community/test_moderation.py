from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, select

from broadsheet.community.accounts import create_member
from broadsheet.community.comments import add_comment, list_comments
from broadsheet.community.moderation import (
    NotAllowed,
    NotFound,
    set_comment_hidden,
    set_paper_hidden,
)
from broadsheet.db.schema import papers


def _paper(store: Engine, paper_id: str):
    with store.connect() as connection:
        return connection.execute(select(papers).where(papers.c.id == paper_id)).one()


def test_only_admins_hide(papers_store: Engine) -> None:
    ada = create_member(papers_store, "ada", "long enough password")
    with pytest.raises(NotAllowed):
        set_paper_hidden(papers_store, ada, "2401.00001", True)
    with pytest.raises(NotAllowed):
        set_paper_hidden(papers_store, None, "2401.00001", True)
    assert _paper(papers_store, "2401.00001").hidden_at is None


def test_admin_hides_and_shows_a_paper(papers_store: Engine) -> None:
    admin = create_member(papers_store, "root", "long enough password", is_admin=True)
    set_paper_hidden(papers_store, admin, "2401.00001", True)
    assert _paper(papers_store, "2401.00001").hidden_at is not None
    set_paper_hidden(papers_store, admin, "2401.00001", False)
    assert _paper(papers_store, "2401.00001").hidden_at is None
    with pytest.raises(NotFound):
        set_paper_hidden(papers_store, admin, "2401.99999", True)


def test_hiding_a_comment_keeps_the_count_of_visible_ones(papers_store: Engine) -> None:
    admin = create_member(papers_store, "root", "long enough password", is_admin=True)
    ada = create_member(papers_store, "ada", "long enough password")
    spam = add_comment(papers_store, ada, "2401.00001", "buy now")
    add_comment(papers_store, ada, "2401.00001", "a real comment")
    with ThreadPoolExecutor(max_workers=4) as pool:  # two admins clicking Hide at once
        list(pool.map(lambda _: set_comment_hidden(papers_store, admin, spam.id, True), range(4)))
    assert _paper(papers_store, "2401.00001").comment_count == 1
    with papers_store.connect() as connection:
        assert [c.body for c in list_comments(connection, "2401.00001")] == ["a real comment"]
        everything = list_comments(connection, "2401.00001", include_hidden=True)
    assert [c.hidden for c in everything] == [True, False]
    assert set_comment_hidden(papers_store, admin, spam.id, False) == "2401.00001"
    assert _paper(papers_store, "2401.00001").comment_count == 2
    with pytest.raises(NotFound):
        set_comment_hidden(papers_store, admin, 999, True)
