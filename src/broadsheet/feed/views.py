"""What the feed shows for a period: its papers, sorted, and where the neighbours are."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, func, select

from broadsheet.db.schema import feed_entries, organisations, papers
from broadsheet.feed.cards import card
from broadsheet.feed.periods import FIRST_DAY, LAST_DAY, Period, Window, window
from broadsheet.feed.trending import Trending


class FeedSort(StrEnum):
    trending = "trending"
    top = "top"
    new = "new"


@dataclass(slots=True)
class FeedPage:
    window: Window
    sort: FeedSort
    papers: list[dict[str, Any]]  # this page's cards, each with votes, feed_day and score
    total: int  # papers in the whole period
    previous_day: date | None  # the nearest earlier day with papers
    next_day: date | None  # the nearest later day with papers
    trending: str = ""  # how the trending sort ranks this period, in one line
    personal: bool = False  # ranked by the member's own model ("for you")

    @property
    def sort_name(self) -> str:
        """The sort as the page's links name it."""
        return "for_you" if self.personal else self.sort.value


CARD_COLUMNS = (
    papers.c.seq,
    papers.c.id,
    papers.c.title,
    papers.c.abstract,
    papers.c.authors,
    papers.c.published_at,
    papers.c.upvotes,
    papers.c.member_votes,
    papers.c.comment_count,
    papers.c.links,
    organisations.c.slug.label("organisation_slug"),
    organisations.c.name.label("organisation_name"),
    organisations.c.full_name.label("organisation_full_name"),
)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def latest_feed_day(connection: Connection, on_or_before: date | None = None) -> date | None:
    """The latest day with papers (of the days the feed shows), up to ``on_or_before``."""
    last = min(on_or_before or LAST_DAY, LAST_DAY)
    query = select(func.max(feed_entries.c.day)).where(
        feed_entries.c.day >= FIRST_DAY, feed_entries.c.day <= last
    )
    return connection.execute(query).scalar_one_or_none()


def default_feed_day(connection: Connection) -> date | None:
    """The day the feed opens on: the latest with papers up to today, else the latest of all."""
    return latest_feed_day(connection, utc_now().date()) or latest_feed_day(connection)


def _neighbour_days(connection: Connection, current: Window) -> tuple[date | None, date | None]:
    """The nearest days with papers before and after ``current`` (of the days the feed shows)."""
    before = connection.execute(
        select(func.max(feed_entries.c.day)).where(
            feed_entries.c.day < current.first, feed_entries.c.day >= FIRST_DAY
        )
    ).scalar_one_or_none()
    after = connection.execute(
        select(func.min(feed_entries.c.day)).where(
            feed_entries.c.day > current.last, feed_entries.c.day <= LAST_DAY
        )
    ).scalar_one_or_none()
    return before, after


def _sort_key(sort: FeedSort):
    if sort == FeedSort.top:
        return lambda r: (r["votes"], r["published_at"] or datetime.min, r["id"])
    if sort == FeedSort.new:
        return lambda r: (r["feed_day"], r["published_at"] or datetime.min, r["id"])
    return lambda r: (
        r["score"],
        r["votes"],
        r["feed_day"],
        r["published_at"] or datetime.min,
        r["id"],
    )


def feed_page(
    connection: Connection,
    period: Period,
    day: date,
    sort: FeedSort = FeedSort.trending,
    limit: int = 30,
    offset: int = 0,
    now: datetime | None = None,
    personal: Callable[[list[str]], Mapping[str, float]] | None = None,
) -> FeedPage:
    """Papers put on the feed during the ``period`` holding ``day``, best first by ``sort``;
    with ``personal`` (scores of paper ids by a member's model), best first by those, papers
    it cannot score last in ``sort``'s order."""
    current = window(period, day)
    # each paper once, on its first day in the window: grouped apart from the card's columns,
    # since PostgreSQL refuses columns of a joined table that the GROUP BY does not name
    first_days = (
        select(feed_entries.c.paper_id, func.min(feed_entries.c.day).label("feed_day"))
        .where(feed_entries.c.day >= current.first, feed_entries.c.day <= current.last)
        .group_by(feed_entries.c.paper_id)
        .subquery()
    )
    query = (
        select(*CARD_COLUMNS, first_days.c.feed_day)
        .select_from(
            first_days.join(papers, papers.c.id == first_days.c.paper_id).outerjoin(
                organisations, organisations.c.id == papers.c.organisation_id
            )
        )
        .where(papers.c.hidden_at.is_(None))
    )
    trending = Trending.of(current, now or utc_now())
    rows = []
    for row in connection.execute(query).mappings():
        item = card(dict(row))
        if isinstance(item["feed_day"], str):  # SQLite returns min() of a date as text
            item["feed_day"] = date.fromisoformat(item["feed_day"])
        item["votes"] = item["upvotes"] + item["member_votes"]
        item["score"] = trending.score(item["votes"], item["feed_day"])
        rows.append(item)
    rows.sort(key=_sort_key(sort), reverse=True)
    scores = personal([r["id"] for r in rows]) if personal is not None and rows else {}
    if scores:  # a stable sort: the unscored keep ``sort``'s order below the scored
        rows.sort(key=lambda r: scores.get(r["id"], float("-inf")), reverse=True)
    previous_day, next_day = _neighbour_days(connection, current)
    return FeedPage(
        current,
        sort,
        rows[offset : offset + limit],
        len(rows),
        previous_day,
        next_day,
        trending.explained,
        personal=bool(scores),
    )
