"""The site's "for you" page: the whole store ranked by the member's own model.

The model (``digest.for_you``) is linear over unit-length paper vectors, so its best papers
are the nearest neighbours of its weight vector: one vector-index search, whatever the
store's size. Papers the member upvoted, saved (read or not) or dismissed drop out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from broadsheet.db.membership import is_one_of
from broadsheet.db.schema import papers
from broadsheet.digest.for_you import Pick, fit, load_vectors, member_signals, shared_sample
from broadsheet.feed.cards import card
from broadsheet.papers.repository import papers_by_seq
from broadsheet.search.vector_index import vectors_of
from broadsheet.search.vectors import vector_index

HIDDEN_ROOM = 10  # extra neighbours asked for, in place of hidden ones
NO_SIGNALS = "Upvote or save a few papers (☆ Save): this page learns from them."
NO_VECTORS = (
    "None of the papers you liked has a vector yet: this page ranks by meaning once "
    "`broadsheet index` has embedded them."
)


@dataclass(frozen=True, slots=True)
class ForYouPage:
    picks: list[tuple[dict[str, Any], Pick]]
    liked: int  # signals the model learned from
    dismissed: int
    notice: str | None = None


def for_you_page(
    engine: Engine, member_id: int, model: str, limit: int = 20, offset: int = 0
) -> ForYouPage:
    """The member's ``limit`` best papers after ``offset``, each with why it was picked."""
    with engine.connect() as connection:
        signals = member_signals(connection, member_id)
        if not signals:
            return ForYouPage([], 0, len(signals.dismissed), NO_SIGNALS)
        fitted = fit(connection, model, shared_sample(engine, model), signals)
    if fitted is None:
        return ForYouPage([], len(signals.liked), len(signals.dismissed), NO_VECTORS)
    direction = fitted.weights[:-1]
    query = (direction / (np.linalg.norm(direction) or 1.0)).astype(np.float32)
    skip = set(signals.liked) | set(signals.dismissed)
    # hidden papers are dropped below with the rest: a ``where`` here would read every
    # visible paper's key to filter the graph's answer
    found = vector_index(engine, model).search(query, offset + limit + len(skip) + HIDDEN_ROOM)
    with engine.connect() as connection:
        ids = dict(
            connection.execute(
                select(papers.c.seq, papers.c.id).where(
                    is_one_of(connection, papers.c.seq, [seq for seq, _ in found]),
                    papers.c.hidden_at.is_(None),
                )
            ).all()
        )
        kept = [(seq, score) for seq, score in found if seq in ids and ids[seq] not in skip]
        kept = kept[offset : offset + limit]
        rows = papers_by_seq(connection, [seq for seq, _ in kept])  # full rows: the page only
        vectors = vectors_of(connection, model, [seq for seq, _ in kept])
    picks = [
        (card(rows[seq]), fitted.pick(rows[seq]["id"], score, vectors[seq]))
        for seq, score in kept
        if seq in vectors and seq in rows
    ]
    return ForYouPage(picks, len(signals.liked), len(signals.dismissed))


@dataclass(frozen=True, slots=True)
class Signal:
    paper_id: str
    title: str
    kind: str  # upvoted, saved, dismissed


def member_signal_papers(engine: Engine, member_id: int) -> list[Signal]:
    """What drives the member's model, as the page lists it: liked papers (upvoted before
    saved), then dismissed ones, newest first."""
    with engine.connect() as connection:
        signals = member_signals(connection, member_id)
        ids = [*signals.liked, *signals.dismissed]
        rows = connection.execute(
            select(papers.c.id, papers.c.title).where(is_one_of(connection, papers.c.id, ids))
        )
        titles = dict(rows.all())
    liked = [
        Signal(i, titles.get(i, i), "upvoted" if i in signals.upvoted else "saved")
        for i in signals.liked
    ]
    return liked + [Signal(i, titles.get(i, i), "dismissed") for i in signals.dismissed]


def member_scores(
    engine: Engine, member_id: int, model: str, paper_ids: list[str]
) -> dict[str, float]:
    """The member's model's score of each of ``paper_ids`` that has a vector (the feed's
    "for you" sort); empty while the member has no model yet."""
    with engine.connect() as connection:
        signals = member_signals(connection, member_id)
        if not signals:
            return {}
        fitted = fit(connection, model, shared_sample(engine, model), signals)
        if fitted is None:
            return {}
        ids, _, vectors = load_vectors(connection, model, paper_ids)
    if not ids:
        return {}
    scores = vectors @ fitted.weights[:-1] + fitted.weights[-1]
    return dict(zip(ids, scores.tolist(), strict=True))
