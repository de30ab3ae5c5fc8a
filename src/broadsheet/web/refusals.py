"""A member's refused change as an HTTP answer (a page in the site's layout, or JSON for the
API)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException

from broadsheet.community import admin_members, library, moderation

# 422: what was sent is wrong (said in words); 403: not this member's to do; 404: what it
# names is not there, or not the member's to see.
STATUS_OF: dict[type[Exception], int] = {
    library.LibraryError: 422,
    moderation.NotAllowed: 403,
    library.NotFound: 404,
    moderation.NotFound: 404,
    admin_members.MemberNotFound: 404,
}


@contextmanager
def refusals() -> Iterator[None]:
    """Turn the refusals of ``STATUS_OF`` raised inside into HTTP answers saying why."""
    try:
        yield
    except tuple(STATUS_OF) as exc:
        status = next(code for kind, code in STATUS_OF.items() if isinstance(exc, kind))
        raise HTTPException(status, str(exc)) from None
