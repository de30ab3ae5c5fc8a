""" "For you": papers ranked by a linear model of one member's own signals.

In the spirit of arxiv-sanity-lite's per-user SVM, each member gets a linear classifier over
the paper embeddings. Positives are the papers they upvoted or saved; negatives are a shared
random sample of other papers, plus the papers they dismissed ("not interested"), which weigh
as much as all their positives together. It is a regularised least-squares classifier
(ridge): the sample's Gram matrix is computed once and shared, so one member's model is a
385 x 385 solve (about a millisecond) instead of an SVM fit. Each pick carries a one-line
reason: the liked paper it is most similar to.

The digest ranks the period's papers with it (``Recommender``); the site's "for you" page
ranks the whole store: paper vectors are unit length, so the papers scoring highest are the
nearest neighbours of the weight vector, which the vector index finds (``site_picks``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from sqlalchemy import Connection, Engine, func, literal, select, union_all

from broadsheet.db.membership import is_one_of
from broadsheet.db.schema import dismissed_papers, paper_vectors, papers, saved_papers, votes
from broadsheet.search.vector_index import vectors_of

NEGATIVES = 2000
RIDGE = 10.0  # strong enough that a few hundred negatives in 384 dimensions don't overfit
MAX_SIGNALS = 500  # the newest upvotes and saves a model learns from (and dismissals)
SAMPLE_SECONDS = 600.0  # how long the site keeps one random sample of negatives


@dataclass(frozen=True, slots=True)
class Pick:
    paper_id: str
    score: float
    because: str  # title of the most similar liked paper
    because_id: str = ""
    verb: str = "upvoted"  # what the member did with it: upvoted or saved

    @property
    def reason(self) -> str:
        return f"similar to “{self.because}” you {self.verb}"


@dataclass(frozen=True, slots=True)
class Signals:
    """What drives a member's model, newest first."""

    liked: list[str]  # upvoted or saved
    dismissed: list[str]
    upvoted: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.liked)


def member_signals(connection: Connection, member_id: int, limit: int = MAX_SIGNALS) -> Signals:
    """The member's newest ``limit`` upvotes and saves (liked) and dismissals."""
    liked_rows = union_all(
        select(votes.c.paper_id, votes.c.created_at.label("at"), literal(1).label("vote")).where(
            votes.c.user_id == member_id
        ),
        select(
            saved_papers.c.paper_id, saved_papers.c.saved_at.label("at"), literal(0).label("vote")
        ).where(saved_papers.c.user_id == member_id),
    ).subquery()
    rows = connection.execute(
        select(liked_rows.c.paper_id, liked_rows.c.vote).order_by(
            liked_rows.c.at.desc(), liked_rows.c.paper_id
        )
    ).all()
    liked: list[str] = []
    upvoted: set[str] = set()
    for paper_id, vote in rows:
        if vote:
            upvoted.add(paper_id)
        if paper_id not in liked and len(liked) < limit:
            liked.append(paper_id)
    dismissed = list(
        connection.execute(
            select(dismissed_papers.c.paper_id)
            .where(dismissed_papers.c.user_id == member_id)
            .order_by(dismissed_papers.c.dismissed_at.desc(), dismissed_papers.c.paper_id)
            .limit(limit)
        ).scalars()
    )
    return Signals(liked, dismissed, upvoted)


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
    order = {paper_id: n for n, paper_id in enumerate(paper_ids)}
    found.sort(key=lambda row: order.get(row.id, 0))
    stored = vectors_of(connection, model, [row.seq for row in found])
    ids, titles, rows = [], [], []
    for row in found:
        if (vector := stored.get(row.seq)) is not None:
            ids.append(row.id)
            titles.append(row.title)
            rows.append(vector)
    matrix = np.vstack(rows) if rows else np.zeros((0, 0), dtype=np.float32)
    return ids, titles, matrix


class NegativeSample:
    """A random sample of papers as negatives, with the statistics every member's fit shares."""

    def __init__(self, connection: Connection, model: str, leave_out: set[str] = frozenset()):
        sample = connection.execute(
            select(papers.c.id)
            .join(paper_vectors, paper_vectors.c.paper_seq == papers.c.seq)
            .where(paper_vectors.c.model == model)
            .order_by(func.random())
            .limit(NEGATIVES + len(leave_out))
        ).scalars()
        others = [paper_id for paper_id in sample if paper_id not in leave_out][:NEGATIVES]
        self.ids, _, negatives = load_vectors(connection, model, others)
        self.row = {paper_id: i for i, paper_id in enumerate(self.ids)}
        self.matrix = _with_bias(negatives) if len(negatives) else None
        if self.matrix is not None:
            self.gram = self.matrix.T @ self.matrix
            self.sum = self.matrix.sum(axis=0)

    def __bool__(self) -> bool:
        return self.matrix is not None

    def weights(
        self, liked_ids: list[str], liked: np.ndarray, dismissed: np.ndarray | None = None
    ) -> np.ndarray:
        """The ridge solution: liked papers scored +1, sampled and dismissed ones -1."""
        gram, total = self.gram.copy(), -self.sum.copy()
        # a liked paper drawn as a negative is not one
        drawn = [row for paper_id in liked_ids if (row := self.row.get(paper_id)) is not None]
        if drawn:
            overlap = self.matrix[drawn]
            gram -= overlap.T @ overlap
            total += overlap.sum(axis=0)
        count = len(self.matrix) - len(drawn)
        balanced = max(count, 1) / len(liked_ids)  # positives weigh as much as negatives
        extended = _with_bias(liked)
        gram += balanced * extended.T @ extended + RIDGE * np.eye(gram.shape[0])
        total += balanced * extended.sum(axis=0)
        if dismissed is not None and len(dismissed):
            # all dismissals together weigh as much as all positives: an explicit "no"
            weight = max(count, 1) / max(len(dismissed), len(liked_ids))
            extended = _with_bias(dismissed)
            gram += weight * extended.T @ extended
            total -= weight * extended.sum(axis=0)
        return cho_solve(cho_factor(gram), total)  # gram is positive definite (ridge)


class Recommender:
    """Built once per send: the candidates, and the negatives' statistics every member shares."""

    def __init__(self, connection: Connection, model: str, candidate_ids: list[str]):
        self.connection, self.model = connection, model
        self.candidate_ids, _, self.candidates = load_vectors(connection, model, candidate_ids)
        # the candidates are what gets scored, so none of them is trained on as a negative
        self.sample = NegativeSample(connection, model, set(self.candidate_ids))

    def picks(self, member_id: int, limit: int = 10) -> list[Pick]:
        """The member's best candidates (none without liked papers, vectors or negatives)."""
        if not self.sample or not len(self.candidate_ids):
            return []
        signals = member_signals(self.connection, member_id)
        model = fit(self.connection, self.model, self.sample, signals)
        if model is None:
            return []
        scores = _with_bias(self.candidates) @ model.weights
        skip = set(model.liked_ids) | set(signals.dismissed)
        order = [i for i in np.argsort(-scores) if self.candidate_ids[i] not in skip][:limit]
        return [
            model.pick(self.candidate_ids[i], float(scores[i]), self.candidates[i]) for i in order
        ]


@dataclass(frozen=True, slots=True)
class MemberModel:
    weights: np.ndarray  # 384 + 1 (bias)
    liked_ids: list[str]
    liked_titles: list[str]
    liked: np.ndarray
    upvoted: set[str]

    def pick(self, paper_id: str, score: float, vector: np.ndarray) -> Pick:
        closest = int((self.liked @ vector).argmax())
        because = self.liked_ids[closest]
        verb = "upvoted" if because in self.upvoted else "saved"
        return Pick(paper_id, score, self.liked_titles[closest], because, verb)


def fit(
    connection: Connection, model: str, sample: NegativeSample, signals: Signals
) -> MemberModel | None:
    """The member's model, or None when none of their liked papers has a vector yet."""
    if not sample or not signals:
        return None
    liked_ids, liked_titles, liked = load_vectors(connection, model, signals.liked)
    if not liked_ids:
        return None
    _, _, dismissed = load_vectors(connection, model, signals.dismissed)
    weights = sample.weights(liked_ids, liked, dismissed if len(dismissed) else None)
    return MemberModel(weights, liked_ids, liked_titles, liked, signals.upvoted)


_samples: dict[tuple[str, str], tuple[float, NegativeSample]] = {}
_samples_lock = threading.Lock()


def shared_sample(engine: Engine, model: str) -> NegativeSample:
    """One negative sample per store and model, drawn again every SAMPLE_SECONDS (the site's
    members share it; drawing costs a scan of the vectors table)."""
    key = (str(engine.url), model)
    now = time.monotonic()
    with _samples_lock:
        held = _samples.get(key)
        if held is not None and now - held[0] < SAMPLE_SECONDS and held[1]:
            return held[1]
        with engine.connect() as connection:
            sample = NegativeSample(connection, model)
        _samples[key] = (now, sample)
        return sample


def _with_bias(matrix: np.ndarray) -> np.ndarray:
    return np.hstack([matrix.astype(np.float64), np.ones((len(matrix), 1))])
