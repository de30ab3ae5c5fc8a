"""Explanations: each result's scores by stage, and why it passed the cut-off."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from broadsheet.search.fusion import MIN_FUSED, STRONG_COSINE
from broadsheet.search.hybrid import Mode, SearchRequest, Sort, search_papers
from broadsheet.search.rerank import rerank_score


def test_every_hit_explains_its_stages_and_why_it_was_kept(topics_store: Engine) -> None:
    found = search_papers(topics_store, SearchRequest("protein folding"))
    assert found.hits
    for hit in found.hits:
        why = hit.explanation
        assert why is not None and why.fused == pytest.approx(hit.score)
        assert (why.lexical, why.dense) == (hit.lexical, hit.dense)
        assert why.passage is not None and why.rerank is not None  # all in the reranked head
        assert "≥" in why.kept_because
        if why.fused >= MIN_FUSED:
            assert why.kept_because.startswith("fused score")
        else:
            assert why.dense is not None and why.dense >= STRONG_COSINE
    reranked = [hit.explanation.rerank for hit in found.hits]
    assert reranked == sorted(reranked, reverse=True)  # the order shown is the reranked one
    top = found.hits[0].explanation
    assert "best sentence" in top.summary() and "reranked" in top.summary()
    assert set(top.as_dict()) == {
        "lexical", "lexical_scaled", "dense", "dense_scaled", "fused", "passage", "rerank",
        "exact_words", "kept_because",
    }  # fmt: skip


def test_reranked_score_is_the_documented_blend(topics_store: Engine) -> None:
    from broadsheet.search.fusion import Fused

    hit = search_papers(topics_store, SearchRequest("protein folding")).hits[0].explanation
    item = Fused(
        0, hit.fused, hit.lexical, hit.dense, hit.lexical_scaled, hit.dense_scaled, hit.passage,
        exact_words=hit.exact_words,
    )  # fmt: skip
    assert hit.exact_words is not None and 0 < hit.exact_words <= 1
    assert rerank_score(item) == pytest.approx(hit.rerank)


def test_named_papers_no_cutoff_and_other_sorts_say_so(topics_store: Engine) -> None:
    named = search_papers(topics_store, SearchRequest("2401.00004"))
    assert named.hits[0].explanation.kept_because.startswith("named by the query")
    everything = search_papers(topics_store, SearchRequest("protein folding", cutoff=False))
    assert everything.total == 12
    assert {h.explanation.kept_because for h in everything.hits} == {"no cut-off asked for"}
    by_date = search_papers(topics_store, SearchRequest("protein folding", sort=Sort.date))
    assert all(h.explanation.rerank is None for h in by_date.hits)  # date order: not reranked
    keywords = search_papers(topics_store, SearchRequest("protein", mode=Mode.lexical))
    assert all(h.explanation.dense is None and h.explanation.passage is None for h in keywords.hits)
