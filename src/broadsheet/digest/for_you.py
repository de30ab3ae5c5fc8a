""" "For you": papers ranked by a linear model of one member's own upvotes.

In the spirit of arxiv-sanity-lite's per-user SVM, each member gets a linear classifier over
the paper embeddings, trained with their upvoted papers as positives and a shared random
sample of other papers as negatives. It is a regularised least-squares classifier (ridge):
the negatives' Gram matrix is computed once per send, so one member's model is a 385 x 385
solve (about a millisecond) instead of an SVM fit. The period's papers, which are what gets
ranked, are left out of the negatives. Each pick carries a one-line reason: the
upvoted paper it is most similar to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, func, select

from broadsheet.community.votes import member_upvotes
from broadsheet.db.membership import is_one_of
from broadsheet.db.schema import paper_vectors, papers
from broadsheet.search.vector_index import vectors_of

NEGATIVES = 2000
RIDGE = 10.0  # strong enough that a few hundred negatives in 384 dimensions don't overfit


@dataclass(frozen=True, slots=True)
class Pick:
    paper_id: str
    score: float
    because: str  # title of the most similar upvoted paper


def load_vectors(
    connection: Connection, model: str, paper_ids: list[str]
) -> tuple[list[str], list[str], np.ndarray]:
    """Ids, titles and vectors of those papers that have a vector for ``model``.

    Only these papers' vectors are read, by key, through the vector index.
    """
    found = connection.execute(
        select(papers.c.seq, papers.c.id, papers.c.title).where(
            is_one_of(connection, papers.c.id, paper_ids)
        )
    ).all()
    stored = vectors_of(connection, model, [row.seq for row in found])
    ids, titles, rows = [], [], []
    for row in found:
        if (vector := stored.get(row.seq)) is not None:
            ids.append(row.id)
            titles.append(row.title)
            rows.append(vector)
    matrix = np.vstack(rows) if rows else np.zeros((0, 0), dtype=np.float32)
    return ids, titles, matrix


class Recommender:
    """Built once per send: the candidates, and the negatives' statistics every member shares."""

    def __init__(self, connection: Connection, model: str, candidate_ids: list[str]):
        self.connection, self.model = connection, model
        self.candidate_ids, _, self.candidates = load_vectors(connection, model, candidate_ids)
        sample = connection.execute(
            select(papers.c.id)
            .join(paper_vectors, paper_vectors.c.paper_seq == papers.c.seq)
            .where(paper_vectors.c.model == model)
            .order_by(func.random())
            .limit(NEGATIVES + len(candidate_ids))
        ).scalars()
        # the candidates are what gets scored, so none of them is trained on as a negative
        scored = set(self.candidate_ids)
        others = [paper_id for paper_id in sample if paper_id not in scored][:NEGATIVES]
        self.negative_ids, _, negatives = load_vectors(connection, model, others)
        self._negative_row = {paper_id: i for i, paper_id in enumerate(self.negative_ids)}
        self._negatives = _with_bias(negatives) if len(negatives) else None
        if self._negatives is not None:
            self._gram = self._negatives.T @ self._negatives
            self._sum = self._negatives.sum(axis=0)

    def picks(self, member_id: int, limit: int = 10) -> list[Pick]:
        """The member's best candidates (none without upvotes, vectors or negatives)."""
        if self._negatives is None or not len(self.candidate_ids):
            return []
        upvoted = member_upvotes(self.connection, member_id)
        positive_ids, positive_titles, positives = load_vectors(
            self.connection, self.model, upvoted
        )
        if not positive_ids:
            return []
        weights = self._weights(positive_ids, positives)
        scores = _with_bias(self.candidates) @ weights
        liked = set(positive_ids)
        order = [i for i in np.argsort(-scores) if self.candidate_ids[i] not in liked][:limit]
        similarity = self.candidates[order] @ positives.T
        return [
            Pick(
                self.candidate_ids[i],
                float(scores[i]),
                positive_titles[int(similarity[n].argmax())],
            )
            for n, i in enumerate(order)
        ]

    def _weights(self, positive_ids: list[str], positives: np.ndarray) -> np.ndarray:
        gram, total = self._gram.copy(), -self._sum.copy()
        count = len(self._negatives)
        for paper_id in positive_ids:  # an upvoted paper drawn as a negative is not one
            row = self._negative_row.get(paper_id)
            if row is not None:
                vector = self._negatives[row]
                gram -= np.outer(vector, vector)
                total += vector
                count -= 1
        balanced = max(count, 1) / len(positive_ids)  # positives weigh as much as negatives
        extended = _with_bias(positives)
        gram += balanced * extended.T @ extended + RIDGE * np.eye(gram.shape[0])
        total += balanced * extended.sum(axis=0)
        return np.linalg.solve(gram, total)


def _with_bias(matrix: np.ndarray) -> np.ndarray:
    return np.hstack([matrix.astype(np.float64), np.ones((len(matrix), 1))])
