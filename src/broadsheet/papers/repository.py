"""Writing papers to the store (batched, idempotent upserts) and reading them back."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, func, select

from broadsheet.db.bulk import bulk_insert, insert_ignoring_conflicts, insert_values
from broadsheet.db.membership import is_one_of
from broadsheet.db.schema import (
    authors,
    feed_entries,
    organisations,
    paper_authors,
    paper_categories,
    papers,
)
from broadsheet.db.version import bump_version
from broadsheet.db.work_locks import one_at_a_time
from broadsheet.papers.record import Paper
from broadsheet.papers.text import clean_author_name, clean_text, drop_control_characters
from broadsheet.search import keyword_index

# Fields a newer version of a paper replaces (an older version never does).
VERSIONED_FIELDS = (
    "title",
    "title_raw",
    "abstract",
    "abstract_raw",
    "authors",
    "primary_category",
    "categories",
    "published_at",
    "updated_at",
    "comment",
    "doi",
    "journal_ref",
    "report_no",
    "license",
)
HASHED_FIELDS = (*VERSIONED_FIELDS, "version", "organisation_slug", "links", "upvotes")


@dataclass(slots=True)
class UpsertCounts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0

    def __iadd__(self, other: UpsertCounts) -> UpsertCounts:
        self.added += other.added
        self.updated += other.updated
        self.unchanged += other.unchanged
        return self


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def _field(value: str | None) -> str | None:
    """A short display field as it came, less control characters (None when nothing is left)."""
    return drop_control_characters(value) or None if value else None


def prepare_row(paper: Paper) -> dict[str, Any]:
    """The store row for ``paper`` before merging: cleaned text, names and categories.

    Every display column is cleaned text (no control characters); ``*_raw`` keep what came.
    """
    names = [n for n in (clean_author_name(a) for a in paper.authors) if n]
    categories = [c for c in map(drop_control_characters, paper.categories) if c]
    return {
        "id": paper.id,
        "version": paper.version,
        "title": clean_text(paper.title_raw),
        "title_raw": paper.title_raw,
        "abstract": clean_text(paper.abstract_raw),
        "abstract_raw": paper.abstract_raw,
        "authors": names,
        "primary_category": categories[0] if categories else None,
        "categories": " ".join(categories),
        "published_at": paper.published_at,
        "updated_at": paper.updated_at,
        "comment": _field(paper.comment),
        "doi": _field(paper.doi),
        "journal_ref": _field(paper.journal_ref),
        "report_no": _field(paper.report_no),
        "license": _field(paper.license),
        "links": {kind: url for kind, raw in paper.links.items() if (url := _field(raw))},
        "upvotes": paper.upvotes,
        "organisation_slug": (
            drop_control_characters(paper.organisation.slug) if paper.organisation else None
        ),
        "source": paper.source,
        "fresh_hash": None,
    }


def prepare_fresh_row(paper: Paper) -> dict[str, Any]:
    """``prepare_row`` plus the record hash it gets if the paper is new to the store."""
    row = prepare_row(paper)
    row["fresh_hash"] = record_hash(merge_rows(None, row))
    return row


# The order of ``prepare_row``'s keys (rows travel between processes as bare value tuples).
ROW_KEYS: tuple[str, ...] = tuple(
    prepare_row(Paper(id="", title_raw="", abstract_raw="", source=""))
)


def merge_rows(existing: dict[str, Any] | None, incoming: dict[str, Any]) -> dict[str, Any]:
    """The row to store when ``incoming`` meets ``existing``.

    A present incoming value replaces the stored one, except that an older version never
    replaces the metadata of a newer one; links are combined; the first source is kept.
    """
    if existing is None:
        merged = dict(incoming)
        merged["upvotes"] = incoming["upvotes"] or 0
        return merged
    merged = dict(existing)
    older = (
        incoming["version"] is not None
        and existing["version"] is not None
        and incoming["version"] < existing["version"]
    )
    if not older:
        for name in VERSIONED_FIELDS:
            if _present(incoming[name]):
                merged[name] = incoming[name]
    if incoming["version"] is not None:
        merged["version"] = max(incoming["version"], existing["version"] or 0)
    if incoming["upvotes"] is not None:
        merged["upvotes"] = incoming["upvotes"]
    if incoming["organisation_slug"]:
        merged["organisation_slug"] = incoming["organisation_slug"]
    merged["links"] = {**(existing["links"] or {}), **incoming["links"]}
    return merged


def record_hash(row: dict[str, Any]) -> str:
    """A digest of every field that makes a stored paper differ."""
    payload = orjson.dumps([row[name] for name in HASHED_FIELDS], default=str)
    return hashlib.md5(payload, usedforsecurity=False).hexdigest()


def _stored_hash(row: dict[str, Any]) -> str:
    """The record hash ``row`` would be stored with as a new paper."""
    return record_hash(merge_rows(None, row))


def _existing_rows(connection: Connection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    columns = [
        papers.c[name]
        for name in (
            *VERSIONED_FIELDS,
            "id",
            "version",
            "links",
            "upvotes",
            "source",
            "record_hash",
        )
    ]
    query = (
        select(*columns, organisations.c.slug.label("organisation_slug"))
        .select_from(papers.outerjoin(organisations))
        .where(is_one_of(connection, papers.c.id, ids))
    )
    for row in connection.execute(query).mappings():
        found[row["id"]] = dict(row)
    return found


def _organisation_ids(connection: Connection, batch: Sequence[Paper]) -> dict[str, int]:
    wanted = {
        drop_control_characters(p.organisation.slug): p.organisation
        for p in batch
        if p.organisation
    }
    if not wanted:
        return {}
    now = _now()
    connection.execute(
        insert_ignoring_conflicts(connection, organisations, ["slug"]),
        [
            {
                "slug": slug,
                "name": drop_control_characters(o.name),
                "full_name": _field(o.full_name),
                "created_at": now,
            }
            for slug, o in wanted.items()
        ],
    )
    rows = connection.execute(
        select(organisations.c.slug, organisations.c.id).where(organisations.c.slug.in_(wanted))
    )
    return dict(rows.all())


class AuthorIdCache:
    """Author ids of one import run, so that known names skip the database.

    Ids found in a transaction are staged and become known only once it commits (``commit``),
    so a rolled-back batch never leaves an id behind. Bounded, so memory stays flat.
    """

    def __init__(self, limit: int = 200_000):
        self.limit = limit
        self._known: dict[str, int] = {}
        self._staged: dict[str, int] = {}

    def lookup(self, names: set[str]) -> tuple[dict[str, int], set[str]]:
        found = {n: i for n in names if (i := self._known.get(n)) is not None}
        return found, names - found.keys()

    def stage(self, ids: dict[str, int]) -> None:
        self._staged.update(ids)

    def commit(self) -> None:
        if len(self._known) + len(self._staged) > self.limit:
            self._known.clear()
        self._known.update(self._staged)
        self._staged.clear()

    def discard(self) -> None:
        self._staged.clear()


def _author_ids(
    connection: Connection, names: set[str], cache: AuthorIdCache | None
) -> dict[str, int]:
    ids, missing = cache.lookup(names) if cache else ({}, names)
    found: dict[str, int] = {}
    if missing:
        new_names = [(name,) for name in sorted(missing)]
        insert_values(connection, authors, ["name"], new_names, ignore_conflicts_on=["name"])
        query = select(authors.c.name, authors.c.id).where(
            is_one_of(connection, authors.c.name, missing)
        )
        found.update(connection.execute(query).all())
    if cache:
        cache.stage(found)
    ids.update(found)
    return ids


def _reindexed(
    rows: Sequence[dict[str, Any]], existing: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The updated ``rows`` whose title or abstract changed (the keyword index's text)."""
    return [
        row
        for row in rows
        if (row["title"], row["abstract"])
        != (existing[row["id"]]["title"], existing[row["id"]]["abstract"])
    ]


def _replace_links(
    connection: Connection,
    rows: Sequence[dict[str, Any]],
    replacing: bool,
    cache: AuthorIdCache | None,
) -> None:
    """Rewrite paper_authors and paper_categories for ``rows``."""
    if not rows:
        return
    ids = [r["id"] for r in rows]
    if replacing:
        for table in (paper_authors, paper_categories):
            connection.execute(table.delete().where(is_one_of(connection, table.c.paper_id, ids)))
    author_ids = _author_ids(connection, {n for r in rows for n in r["authors"]}, cache)
    # Sorted by the secondary index's key, each batch walks that index's pages once in order
    # instead of touching them at random (about a third faster on a large store).
    author_links = sorted(
        ((r["id"], i, author_ids[name]) for r in rows for i, name in enumerate(r["authors"])),
        key=itemgetter(2),
    )
    insert_values(connection, paper_authors, ("paper_id", "position", "author_id"), author_links)
    category_links = sorted(
        ((r["id"], c) for r in rows for c in dict.fromkeys(r["categories"].split())),
        key=itemgetter(1),
    )
    insert_values(connection, paper_categories, ("paper_id", "category"), category_links)


def upsert_papers(
    connection: Connection, batch: Sequence[Paper], author_cache: AuthorIdCache | None = None
) -> UpsertCounts:
    """Store ``batch`` in the caller's transaction; returns how many were added/updated/unchanged.

    Every record counts once: a later record of an id the batch already holds counts as
    updated or unchanged against the earlier one, as it would in a later batch, so the counts
    do not depend on how a file is cut into batches.
    Re-running the same batch changes nothing. Feed placements are added once per paper and day.
    With ``author_cache``, the caller must ``commit`` or ``discard`` it with the transaction.
    Rows are locked in the store's lock order (db/version.py): stored papers in ascending id,
    the store version last, so that members voting on these papers meanwhile never deadlock.
    """
    counts = UpsertCounts()
    if not batch:
        return counts
    # No other writer may add or change these papers between the reads below and the writes:
    # SQLite's one write lock is taken here; on PostgreSQL writers of papers queue here.
    one_at_a_time(connection, "papers")
    incoming: dict[str, dict[str, Any]] = {}
    merged_in_batch: set[str] = set()  # ids with more than one record in this batch
    for paper in batch:  # later records of the same id merge onto earlier ones
        row = paper.prepared or prepare_row(paper)
        previous = incoming.get(paper.id)
        if previous is None:
            incoming[paper.id] = row
            continue
        incoming[paper.id] = merge_rows(previous, row)
        merged_in_batch.add(paper.id)
        if _stored_hash(incoming[paper.id]) == _stored_hash(previous):
            counts.unchanged += 1
        else:
            counts.updated += 1
    existing = _existing_rows(connection, list(incoming))
    org_ids = _organisation_ids(connection, batch)
    now = _now()
    to_insert: list[dict[str, Any]] = []
    to_update: list[dict[str, Any]] = []
    for paper_id, row in incoming.items():
        before = existing.get(paper_id)
        merged = merge_rows(before, row)
        fresh_hash = merged.pop("fresh_hash", None)
        if before is None and fresh_hash and paper_id not in merged_in_batch:
            merged["record_hash"] = fresh_hash
        else:
            merged["record_hash"] = record_hash(merged)
        if before is not None and merged["record_hash"] == before["record_hash"]:
            counts.unchanged += 1
            continue
        merged["organisation_id"] = org_ids.get(merged.pop("organisation_slug") or "")
        merged["modified_at"] = now
        if before is None:
            merged["created_at"] = now
            to_insert.append(merged)
        else:
            to_update.append(merged)
    to_update.sort(key=itemgetter("id"))
    keywords = keyword_index.for_engine(connection)
    keywords.number_new(connection, to_insert)
    bulk_insert(connection, papers, to_insert)
    _replace_links(connection, to_insert, replacing=False, cache=author_cache)
    keywords.add(connection, to_insert)
    counts.added += len(to_insert)
    if to_update:
        columns = (
            *VERSIONED_FIELDS,
            "version",
            "links",
            "upvotes",
            "organisation_id",
            "record_hash",
            "modified_at",
        )
        statement = (
            papers.update()
            .where(papers.c.id == bindparam("_id"))
            .values({name: bindparam(name) for name in columns})
        )
        connection.execute(
            statement, [{"_id": r["id"], **{name: r[name] for name in columns}} for r in to_update]
        )
        keywords.replace(connection, _reindexed(to_update, existing))
        counts.updated += len(to_update)
    _replace_links(connection, to_update, replacing=True, cache=author_cache)
    placements = [
        {
            "paper_id": p.id,
            "day": p.feed.day,
            "source": p.feed.source,
            "submitted_by": _field(p.feed.submitted_by),
            "created_at": now,
        }
        for p in batch
        if p.feed is not None
    ]
    bulk_insert(connection, feed_entries, placements, ignore_conflicts_on=["paper_id", "day"])
    bump_version(connection)
    return counts


def _with_organisation():
    """Papers joined to their organisation's slug and names."""
    return select(
        papers,
        organisations.c.slug.label("organisation_slug"),
        organisations.c.name.label("organisation_name"),
        organisations.c.full_name.label("organisation_full_name"),
    ).select_from(papers.outerjoin(organisations))


def get_paper(connection: Connection, paper_id: str) -> dict[str, Any] | None:
    row = connection.execute(_with_organisation().where(papers.c.id == paper_id)).mappings().first()
    return dict(row) if row else None


def papers_by_seq(connection: Connection, seqs: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Stored papers (with organisation) by their integer key; missing ones are left out."""
    query = _with_organisation().where(is_one_of(connection, papers.c.seq, seqs))
    return {row["seq"]: dict(row) for row in connection.execute(query).mappings()}


@dataclass(slots=True)
class StoreStats:
    papers: int
    authors: int
    organisations: int
    feed_entries: int
    feed_days: int
    first_published: datetime | None
    last_published: datetime | None
    top_categories: list[tuple[str, int]]
    sources: list[tuple[str, int]]


def store_stats(connection: Connection) -> StoreStats:
    def scalar(query) -> Any:
        return connection.execute(query).scalar_one()

    first, last = connection.execute(
        select(func.min(papers.c.published_at), func.max(papers.c.published_at))
    ).one()
    top_categories = connection.execute(
        select(paper_categories.c.category, func.count().label("n"))
        .group_by(paper_categories.c.category)
        .order_by(func.count().desc())
        .limit(10)
    ).all()
    sources = connection.execute(
        select(papers.c.source, func.count()).group_by(papers.c.source).order_by(papers.c.source)
    ).all()
    return StoreStats(
        papers=scalar(select(func.count()).select_from(papers)),
        authors=scalar(select(func.count()).select_from(authors)),
        organisations=scalar(select(func.count()).select_from(organisations)),
        feed_entries=scalar(select(func.count()).select_from(feed_entries)),
        feed_days=scalar(select(func.count(func.distinct(feed_entries.c.day)))),
        first_published=first,
        last_published=last,
        top_categories=list(top_categories),
        sources=list(sources),
    )
