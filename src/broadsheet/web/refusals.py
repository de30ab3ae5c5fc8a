"""A member's refused change as an HTTP answer (a page in the site's layout)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException

from broadsheet.community.library import LibraryError, NotFound


@contextmanager
def refusals() -> Iterator[None]:
    """422 says what is wrong with what was sent; 404 that what it names is not there (or not
    the member's to change)."""
    try:
        yield
    except LibraryError as exc:
        raise HTTPException(422, str(exc)) from None
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
