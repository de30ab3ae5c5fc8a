"""The Paper record every source produces and the store consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(slots=True)
class Organisation:
    slug: str  # short name, e.g. "deepmind"
    name: str  # display name, e.g. "DeepMind"
    full_name: str | None = None


@dataclass(slots=True)
class FeedPlacement:
    """Puts a paper on the daily feed for ``day``."""

    day: date
    source: str  # "daily_papers", "harvest:cs.LG", "submission"
    submitted_by: str | None = None


@dataclass(slots=True)
class Paper:
    id: str
    title_raw: str
    abstract_raw: str
    source: str
    version: int | None = None
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)  # primary first
    organisation: Organisation | None = None
    published_at: datetime | None = None
    updated_at: datetime | None = None
    comment: str | None = None
    doi: str | None = None
    journal_ref: str | None = None
    report_no: str | None = None
    license: str | None = None
    links: dict[str, str] = field(default_factory=dict)
    upvotes: int | None = None
    feed: FeedPlacement | None = None
    # the store row made from this record, when a reader process prepared it ahead of time
    prepared: dict | None = field(default=None, repr=False, compare=False)
