"""The HNSW graph of large stores: saved by `index`, loaded and kept in step by searchers."""

from __future__ import annotations

from itertools import islice

import numpy as np
import pytest
from sqlalchemy import Engine

from broadsheet.papers.record import Paper
from broadsheet.papers.repository import upsert_papers
from broadsheet.search import vectors
from broadsheet.search.ann import AnnGraph, ann_path
from broadsheet.search.vectors import (
    VectorIndex,
    pending_papers,
    save_graph,
    store_vectors,
    vector_index,
)

MODEL = "test-model"
DIM = 32


@pytest.fixture(autouse=True)
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Graphs from 100 vectors on, so tests stay small; a fresh per-process index cache."""
    monkeypatch.setattr(vectors, "ANN_FROM", 100)
    monkeypatch.setattr(vectors, "CATCH_UP_LIMIT", 20)
    monkeypatch.setattr(vectors, "_indexes", {})


def add_papers(engine: Engine, start: int, count: int, seed: int) -> np.ndarray:
    """``count`` papers with random unit vectors; returns the vectors in seq order."""
    with engine.begin() as connection:
        upsert_papers(
            connection,
            [
                Paper(
                    id=f"2401.{i:05d}",
                    title_raw=f"Paper {i}",
                    abstract_raw=f"Text {i}.",
                    source="test",
                )
                for i in range(start, start + count)
            ],
        )
    rng = np.random.default_rng(seed)
    with engine.connect() as reader:
        pending = list(islice(pending_papers(reader, MODEL), count))
    stacked = rng.standard_normal((len(pending), DIM)).astype(np.float32)
    stacked /= np.linalg.norm(stacked, axis=1, keepdims=True)
    with engine.begin() as writer:
        store_vectors(writer, MODEL, pending, stacked)
    return stacked


def fresh_index(engine: Engine) -> VectorIndex:
    """What a new process would see."""
    vectors._indexes.clear()
    return vector_index(engine, MODEL)


def exact_top(index: VectorIndex, query: np.ndarray, k: int) -> list[int]:
    return [int(index.seqs[i]) for i in np.argsort(-(index.matrix @ query))[:k]]


def test_small_stores_have_no_graph(store: Engine) -> None:
    add_papers(store, 1, 50, seed=1)
    assert save_graph(store, MODEL) is None
    assert not ann_path(store, MODEL).exists()
    assert not fresh_index(store).uses_graph


def test_saved_graph_is_loaded_and_finds_what_the_exact_scan_finds(store: Engine) -> None:
    add_papers(store, 1, 300, seed=2)
    assert save_graph(store, MODEL) == 300
    assert ann_path(store, MODEL).is_file()
    index = fresh_index(store)
    assert index.uses_graph and len(index.graph) == 300
    rng = np.random.default_rng(3)
    overlap = 0
    for _ in range(20):
        query = rng.standard_normal(DIM).astype(np.float32)
        query /= np.linalg.norm(query)
        found = index.search(query, 10)
        assert [score for _, score in found] == sorted((s for _, s in found), reverse=True)
        overlap += len({seq for seq, _ in found} & set(exact_top(index, query, 10)))
        exact = {int(s): float(c) for s, c in zip(index.seqs, index.matrix @ query, strict=True)}
        assert all(abs(score - exact[seq]) < 1e-5 for seq, score in found)  # exact re-scoring
    assert overlap / 200 >= 0.95  # approximate, but hardly ever wrong


def test_new_vectors_join_a_loaded_graph_and_a_far_behind_graph_is_left_unused(
    store: Engine,
) -> None:
    add_papers(store, 1, 200, seed=4)
    save_graph(store, MODEL)
    fresh_index(store)
    added = add_papers(store, 1000, 10, seed=5)  # within the catch-up limit
    index = vector_index(store, MODEL)
    assert index.uses_graph and len(index.graph) == 210
    assert index.search(added[3], 1)[0][0] == index.seqs[-7]
    add_papers(store, 2000, 50, seed=6)  # more than a searcher adds on its own
    index = fresh_index(store)
    assert not index.uses_graph and len(index) == 260
    assert save_graph(store, MODEL) == 260
    assert fresh_index(store).uses_graph


def test_graph_search_honours_exclude_and_filters_fall_back_to_exact(store: Engine) -> None:
    stored = add_papers(store, 1, 150, seed=7)
    save_graph(store, MODEL)
    index = fresh_index(store)
    first = int(index.seqs[0])
    assert index.search(stored[0], 1)[0][0] == first
    assert first not in {seq for seq, _ in index.search(stored[0], 5, exclude=first)}
    allowed = {int(s) for s in index.seqs[100:110]}
    assert {seq for seq, _ in index.search(stored[0], 50, allowed=allowed)} == allowed


def test_an_unreadable_graph_is_ignored(store: Engine) -> None:
    add_papers(store, 1, 120, seed=8)
    save_graph(store, MODEL)
    path = ann_path(store, MODEL)
    path.write_bytes(b"not a graph")
    assert AnnGraph.load(path, DIM) is None
    index = fresh_index(store)
    assert not index.uses_graph and len(index.search(index.matrix[0], 3)) == 3
