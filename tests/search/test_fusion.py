from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broadsheet.search.fusion import Fused, fuse, min_max, relevant, scaled_to_best


def test_min_max() -> None:
    assert min_max([]) == []
    assert min_max([3.0, 3.0]) == [1.0, 1.0]
    assert min_max([1.0, 3.0, 2.0]) == [0.0, 1.0, 0.5]


def test_fuse_weights_both_lists() -> None:
    lexical = [(1, 10.0), (2, 5.0), (3, 0.0)]
    dense = [(2, 0.9), (4, 0.5), (1, 0.1)]
    fused = {f.seq: f for f in fuse(lexical, dense, dense_weight=0.5)}
    assert fused[1].score == pytest.approx(0.5 * 1.0 + 0.5 * 0.0)
    assert fused[2].score == pytest.approx(0.5 * 0.5 + 0.5 * 1.0)
    assert fused[4].score == pytest.approx(0.5 * 0.0 + 0.5 * 0.5)
    assert fused[3].score == 0.0
    assert fuse(lexical, dense, 0.5)[0].seq == 2
    assert fuse(lexical, dense, 0.0)[0].seq == 1  # keywords only
    assert fuse(lexical, dense, 1.0)[0].seq == 2  # meaning only


def test_one_empty_list_gives_the_other_full_weight() -> None:
    only = fuse([(7, 3.0), (8, 1.0)], [], dense_weight=0.9)
    assert [(f.seq, f.score) for f in only] == [(7, 1.0), (8, pytest.approx(1 / 3))]


def test_the_weakest_keyword_match_still_counts() -> None:
    # three papers with the query's word, one without: min-max gave the third the same 0
    lexical = [(1, 1.69), (12, 1.60), (11, 1.59)]
    dense = [(1, 0.36), (11, 0.25), (12, 0.23), (7, 0.14)]
    fused = {f.seq: f for f in fuse(lexical, dense, dense_weight=0.4)}
    assert fused[11].lexical_norm == pytest.approx(1.59 / 1.69)
    assert fused[11].score > fused[7].score and relevant(fused[11])
    assert scaled_to_best([2.0, 1.0]) == [1.0, 0.5]
    assert scaled_to_best([2.0, 0.0]) == min_max([2.0, 0.0])  # not all positive: min-max


def test_relevance_cutoff() -> None:
    assert relevant(Fused(1, 0.1, dense=0.5))  # close in meaning on its own
    assert not relevant(Fused(1, 0.1, dense=0.2))
    assert relevant(Fused(1, 0.9, lexical=12.0, lexical_norm=0.9))
    assert not relevant(Fused(1, 0.1, lexical=1.0, lexical_norm=0.05, dense=0.05))


@given(
    st.lists(
        st.tuples(st.integers(0, 50), st.floats(0, 50)), unique_by=lambda t: t[0], max_size=30
    ),
    st.lists(
        st.tuples(st.integers(0, 50), st.floats(-1, 1)), unique_by=lambda t: t[0], max_size=30
    ),
    st.floats(0, 1),
)
def test_fused_scores_are_bounded_and_sorted(lexical, dense, weight) -> None:
    fused = fuse(lexical, dense, weight)
    assert len(fused) == len({s for s, _ in lexical} | {s for s, _ in dense})
    assert all(-1e-9 <= f.score <= 1 + 1e-9 for f in fused)
    assert [f.score for f in fused] == sorted((f.score for f in fused), reverse=True)
