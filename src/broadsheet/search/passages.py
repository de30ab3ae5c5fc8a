"""Passages: each paper's abstract split into sentences, each embedded on its own.

A paper's one vector reads the first 256 tokens of its title and abstract and blends them;
a claim or a short query usually matches one sentence of the abstract, and that sentence
may lie past what the model reads. Search reranks its first candidates by their best
sentence (:mod:`broadsheet.search.rerank`). All of a paper's passage vectors sit in one
row (``passage_vectors``) as a float16 matrix, with the hash of the passages they came from,
so an edited abstract is embedded again and nothing else is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from sqlalchemy import Connection, delete, select

from broadsheet.db.bulk import bulk_insert
from broadsheet.db.membership import is_one_of
from broadsheet.db.schema import passage_vectors
from broadsheet.search.embed import text_hash

# a sentence ends at . ! or ? followed by space and what can start the next one
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")
MIN_PASSAGE_CHARS = 20  # a shorter piece ("Methods.", "(ii)") joins the sentence before it
MAX_PASSAGES = 32  # the rest of a longer abstract forms the last passage (the model clips it)


def split_passages(title: str | None, abstract: str | None) -> list[str]:
    """The sentences of ``abstract``; the title alone when there is no abstract."""
    passages: list[str] = []
    for piece in _SENTENCE_END.split(" ".join((abstract or "").split())):
        if passages and len(piece) < MIN_PASSAGE_CHARS:
            passages[-1] = f"{passages[-1]} {piece}"
        elif piece:
            passages.append(piece)
    if len(passages) > MAX_PASSAGES:
        passages[MAX_PASSAGES - 1 :] = [" ".join(passages[MAX_PASSAGES - 1 :])]
    if not passages and title and title.strip():
        passages = [" ".join(title.split())]
    return passages


def passages_hash(passages: Sequence[str]) -> str:
    return text_hash("\n".join(passages))


def store_passages(
    connection: Connection,
    model: str,
    papers: Sequence[tuple[int, str]],
    matrices: Sequence[np.ndarray],
) -> None:
    """Replace the passage vectors of ``papers`` ((seq, passages hash)) for ``model``, in the
    caller's transaction."""
    connection.execute(
        delete(passage_vectors).where(
            passage_vectors.c.model == model,
            passage_vectors.c.paper_seq.in_([seq for seq, _ in papers]),
        )
    )
    bulk_insert(
        connection,
        passage_vectors,
        [
            {
                "paper_seq": seq,
                "model": model,
                "text_hash": digest,
                "count": len(matrix),
                "dim": matrix.shape[1],
                "vectors": matrix.astype(np.float16).tobytes(),
            }
            for (seq, digest), matrix in zip(papers, matrices, strict=True)
            if len(matrix)
        ],
    )


def best_passages(
    connection: Connection, model: str, seqs: Sequence[int], query_vector: np.ndarray
) -> dict[int, float]:
    """The cosine of each paper's passage closest to ``query_vector``, for those of ``seqs``
    whose passages are embedded."""
    if not seqs:
        return {}
    rows = connection.execute(
        select(
            passage_vectors.c.paper_seq,
            passage_vectors.c.count,
            passage_vectors.c.dim,
            passage_vectors.c.vectors,
        ).where(
            passage_vectors.c.model == model,
            is_one_of(connection, passage_vectors.c.paper_seq, list(seqs)),
        )
    )
    query = np.asarray(query_vector, dtype=np.float32)
    best: dict[int, float] = {}
    for seq, count, dim, blob in rows:
        if dim != len(query):
            continue
        matrix = np.frombuffer(blob, dtype=np.float16).reshape(count, dim)
        best[seq] = float((matrix.astype(np.float32) @ query).max())
    return best
