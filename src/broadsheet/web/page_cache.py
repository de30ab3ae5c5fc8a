"""Rendered fragments for visitors who are not signed in, kept while the store is unchanged.

An entry is served only while the store's change counter (``db/version.py``) still has the
value it was rendered at, so a vote, comment or import in any process retires it at once;
``max_age`` bounds how far time-dependent parts (trending scores age) can drift.

With a read-only replica the counter is read from the replica, beside the rows it labels:
a write retires entries once the replica has replayed it, so pages are as stale as the
replica's lag and no more (a counter from the main store would file the replica's older
rows under the newer number, kept until the next write or ``max_age``). See ``web/stores.py``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from fastapi import Request

from broadsheet.metrics import count_cache_lookup
from broadsheet.web.links import here, site_url

T = TypeVar("T")


def visitor_key(request: Request, *parts: Hashable) -> tuple[Hashable, ...]:
    """The key of a page drawn for visitors, from everything that changes it: ``parts`` (what
    the rows depend on), the page's canonical address (``here``: links back to it name it),
    and the site's address in its absolute links (the request's own when BASE_URL is unset).

    Parameters the page does not read (``?utm_source=``) make no entry of their own and reach
    no other visitor's page.
    """
    return (here(request), site_url(request), *parts)


class PageCache(Generic[T]):
    def __init__(self, name: str = "pages", max_entries: int = 256, max_age: float = 60.0):
        self.name = name  # its hits and misses are counted under this name (``/metrics``)
        self.max_entries, self.max_age = max_entries, max_age
        self._entries: OrderedDict[Hashable, tuple[int, float, T]] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_make(self, key: Hashable, version: int, make: Callable[[], T]) -> T:
        """The cached value for ``key`` at this store ``version``, made afresh when needed."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == version and now - entry[1] < self.max_age:
                self._entries.move_to_end(key)
                count_cache_lookup(self.name, hit=True)
                return entry[2]
        count_cache_lookup(self.name, hit=False)
        value = make()  # outside the lock: two misses may both render, which is harmless
        with self._lock:
            self._entries[key] = (version, now, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
