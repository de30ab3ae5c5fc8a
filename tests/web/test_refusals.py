"""Refusals as HTTP answers: the status says which kind, the detail says why."""

from __future__ import annotations

import pytest
from fastapi import HTTPException

from broadsheet.community import library, moderation
from broadsheet.web.refusals import refusals


@pytest.mark.parametrize(
    ("refusal", "status"),
    [
        (library.LibraryError("Name: too long"), 422),
        (library.NotFound("No collection 7 here."), 404),
        (moderation.NotFound("No comment 9 here."), 404),
        (moderation.NotAllowed("Only its author may edit it."), 403),
    ],
)
def test_each_refusal_answers_its_status_with_its_words(refusal: Exception, status: int) -> None:
    with pytest.raises(HTTPException) as answered, refusals():
        raise refusal
    assert answered.value.status_code == status and answered.value.detail == str(refusal)


def test_a_bug_is_not_taken_for_a_missing_thing() -> None:
    with pytest.raises(KeyError), refusals():
        raise KeyError("a lookup that went wrong")  # a LookupError, but no refusal: a 500
