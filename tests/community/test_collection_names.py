"""Collection names are one member's each in any letter case or script, on either engine."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from broadsheet.community.accounts import create_member
from broadsheet.community.library import LibraryError, create_collection, update_collection

PASSWORD = "long enough password"


@pytest.mark.parametrize(
    ("first", "second"),
    [("Über", "über"), ("Статьи", "статьи"), ("Ⅽ", "c"), ("Straße", "STRASSE")],
)
def test_a_name_taken_in_another_case_is_refused_with_a_reason(
    store: Engine, first: str, second: str
) -> None:
    ada = create_member(store, "ada", PASSWORD)
    create_collection(store, ada, first)
    with pytest.raises(LibraryError, match="Collection name is taken"):
        create_collection(store, ada, second)
    other = create_collection(store, ada, "Other")
    with pytest.raises(LibraryError, match="Collection name is taken"):
        update_collection(store, ada, other.id, name=second)
    assert update_collection(store, ada, other.id, name="Other, renamed").name == "Other, renamed"


def test_another_member_may_use_the_same_name(store: Engine) -> None:
    ada = create_member(store, "ada", PASSWORD)
    bob = create_member(store, "bob", PASSWORD)
    create_collection(store, ada, "論文")
    assert create_collection(store, bob, "論文").name == "論文"
