"""The marks drawn on a page's cards: upvoted, saved, dismissed."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from broadsheet.community.accounts import create_member
from broadsheet.community.dismissals import dismiss
from broadsheet.community.library import NotFound, save_paper
from broadsheet.community.marks import CardMarks, card_marks
from broadsheet.community.votes import set_vote

SHOWN = ["2401.00001", "2401.00002", "2499.99999"]


def test_each_mark_is_the_members_own(papers_store: Engine) -> None:
    ada = create_member(papers_store, "ada", "long enough password")
    bob = create_member(papers_store, "bob", "long enough password")
    set_vote(papers_store, ada, "2401.00001")
    save_paper(papers_store, ada, "2401.00002")
    dismiss(papers_store, ada, "2401.00002")
    dismiss(papers_store, bob, "2401.00001")
    with papers_store.connect() as connection:
        assert card_marks(connection, ada, SHOWN) == CardMarks(
            voted={"2401.00001"}, saved={"2401.00002"}, dismissed={"2401.00002"}
        )
        assert card_marks(connection, bob, SHOWN) == CardMarks(dismissed={"2401.00001"})
        assert card_marks(connection, None, SHOWN) == CardMarks()
        assert card_marks(connection, ada, []) == CardMarks()
    dismiss(papers_store, ada, "2401.00002", dismissed=False)
    with papers_store.connect() as connection:
        assert card_marks(connection, ada, SHOWN).dismissed == set()


def test_a_missing_or_hidden_paper_cannot_be_dismissed(
    papers_store: Engine, hide: Callable[[str], None]
) -> None:
    ada = create_member(papers_store, "ada", "long enough password")
    with pytest.raises(NotFound):
        dismiss(papers_store, ada, "2499.99999")
    hide("2401.00002")
    with pytest.raises(NotFound):
        dismiss(papers_store, ada, "2401.00002")
    with papers_store.connect() as connection:
        assert card_marks(connection, ada, SHOWN).dismissed == set()
