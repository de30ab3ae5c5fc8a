"""Which store a request reads: the main store, or the read-only replica (READ_DATABASE_URL).

Search, the feeds, paper, organisation and author pages, the Atom feeds and the JSON API read
from the replica; every write, and what a member reads about themselves (who they are, their
votes, their digest), stays on the main store. Without a replica both are the same engine.

A replica that lags shows the store as it was a moment ago: a new vote, comment or paper is
missing from its pages and search until the replica has replayed it. The page cache keys
what it keeps by the change counter read from the same replica (``pages.daily``), so a
rendered page is never older than the counter it is filed under, and goes once the replica
has caught up: staleness is the replica's lag, not the cache's ``max_age``.
"""

from __future__ import annotations

from fastapi import Request
from sqlalchemy import Engine

from broadsheet.web.auth import current_member


def read_engine(request: Request, *, own_writes: bool = False) -> Engine:
    """The engine for reads that may be a moment behind the latest writes.

    ``own_writes``: the page shows what a signed-in member may just have written (a comment,
    a paper they submitted or hid, which their form sends them straight to); members read it
    from the main store, visitors from the replica all the same.
    """
    state = request.app.state
    if own_writes and current_member(request) is not None:
        return state.engine
    return state.read_engine
