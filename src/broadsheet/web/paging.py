"""Page links for the paged lists (search results, the feed, a library, collections, follows):
previous, next, first and last, each keeping every other parameter of the address, and whether
a page is past the last one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

from broadsheet.web.queries import PAGE_SIZE


@dataclass(frozen=True)
class Paging:
    """Page ``page`` of ``total`` items, ``size`` to a page, at ``path`` with ``params``; the
    page number is the parameter ``param`` (a page with two lists pages each by its own)."""

    path: str
    params: tuple[tuple[str, str], ...]  # the address's other parameters, without ``param``
    page: int
    total: int
    size: int = PAGE_SIZE
    param: str = "page"

    @property
    def offset(self) -> int:
        """How many items come before this page."""
        return (self.page - 1) * self.size

    @property
    def last(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def past_end(self) -> bool:
        """A page beyond the last of a list that has items (an empty list is just empty)."""
        return self.total > 0 and self.page > self.last

    @property
    def previous_url(self) -> str | None:
        return self.url(self.page - 1) if 1 < self.page <= self.last else None

    @property
    def next_url(self) -> str | None:
        return self.url(self.page + 1) if self.page < self.last else None

    def url(self, page: int) -> str:
        """This list's address at ``page`` (page 1 without the parameter)."""
        params = [*self.params, *([(self.param, str(page))] if page > 1 else [])]
        return f"{self.path}?{urlencode(params)}" if params else self.path


def paging(
    path: str,
    params: Iterable[tuple[str, str]],
    page: int,
    total: int,
    size: int = PAGE_SIZE,
    param: str = "page",
) -> Paging:
    """The paging of a list whose address has ``params`` (any ``param`` among them is
    dropped)."""
    others = tuple((name, value) for name, value in params if name != param)
    return Paging(path, others, page, total, size, param)
