"""Hybrid search end to end on the embedded topic store."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine

from broadsheet.search.filters import SearchFilters
from broadsheet.search.highlight import MARK_END, MARK_START
from broadsheet.search.hybrid import Mode, SearchRequest, Sort, search_papers


def found(store: Engine, query: str, **options) -> list[str]:
    results = search_papers(store, SearchRequest(query, **options))
    return [hit.paper["id"] for hit in results.hits]


def test_finds_by_meaning_without_shared_words(topics_store: Engine) -> None:
    # no word of the query occurs in the paper about aggregating sets
    query = "summarising a bag of items as a single representation"
    assert search_papers(topics_store, SearchRequest(query, mode=Mode.lexical)).hits == []
    assert found(topics_store, query)[0] == "2401.00001"
    assert found(topics_store, "mislabelled examples with high loss")[0] == "2401.00007"


def test_one_word_query_mixes_senses(topics_store: Engine) -> None:
    top = found(topics_store, "pooling", limit=4)
    assert {"2401.00001", "2401.00011", "2401.00012"} <= set(top)


def test_hybrid_beats_either_side_on_a_mixed_query(topics_store: Engine) -> None:
    query = "normalization layers in deep networks"
    assert found(topics_store, query)[0] == "2401.00002"
    assert found(topics_store, query, mode=Mode.lexical)[0] == "2401.00002"


def test_cutoff_drops_unrelated_papers(topics_store: Engine) -> None:
    with_cutoff = search_papers(topics_store, SearchRequest("quantum error correction"))
    without = search_papers(
        topics_store, SearchRequest("quantum error correction", cutoff=False, limit=50)
    )
    assert with_cutoff.hits[0].paper["id"] == "2401.00009"
    assert with_cutoff.total < without.total == 12
    assert "2401.00005" not in [h.paper["id"] for h in with_cutoff.hits]  # galaxies


def test_filters_sort_and_pages(topics_store: Engine) -> None:
    recent = found(topics_store, "learning", filters=SearchFilters(since=date(2024, 1, 8)))
    assert recent and all(pid >= "2401.00007" for pid in recent)
    assert found(topics_store, "images", filters=SearchFilters(organisation="diffusionlab")) == [
        "2401.00003"
    ]
    by_votes = search_papers(
        topics_store, SearchRequest("learning", sort=Sort.upvotes, cutoff=False, limit=50)
    )
    votes = [h.paper["upvotes"] for h in by_votes.hits]
    assert votes == sorted(votes, reverse=True)
    by_date = search_papers(
        topics_store, SearchRequest("learning", sort=Sort.date, cutoff=False, limit=50)
    )
    dates = [h.paper["published_at"] for h in by_date.hits]
    assert dates == sorted(dates, reverse=True)
    first = found(topics_store, "learning", cutoff=False, limit=5)
    second = found(topics_store, "learning", cutoff=False, limit=5, offset=5)
    assert len(first) == 5 and not set(first) & set(second)


def test_highlights_mark_query_terms(topics_store: Engine) -> None:
    hit = search_papers(topics_store, SearchRequest("galaxy formation")).hits[0]
    assert f"{MARK_START}Galaxy{MARK_END}" in hit.title_highlight
    assert MARK_START in hit.abstract_highlight


def test_degrades_to_keywords_when_vectors_are_missing(store: Engine, fixtures) -> None:
    from broadsheet.ingest.runner import import_file

    import_file(store, fixtures / "daily_papers" / "topics.json")
    results = search_papers(store, SearchRequest("pooling"))
    assert results.mode == Mode.lexical
    assert "broadsheet index" in results.notice
    assert results.hits  # keyword results still come back
    dense = search_papers(store, SearchRequest("pooling", mode=Mode.dense))
    assert dense.mode == Mode.lexical and dense.hits


def test_partial_index_says_so(topics_store: Engine) -> None:
    from broadsheet.papers.record import Paper
    from broadsheet.papers.repository import upsert_papers

    with topics_store.begin() as connection:
        upsert_papers(
            connection,
            [
                Paper(
                    id="2402.00009",
                    title_raw="Unembedded pooling paper",
                    abstract_raw="Pooling.",
                    source="test",
                )
            ],
        )
    results = search_papers(topics_store, SearchRequest("pooling", limit=50))
    assert results.mode == Mode.hybrid
    assert "covers 12 of 13" in results.notice
    assert "2402.00009" in [h.paper["id"] for h in results.hits]  # found by keywords at once


@pytest.mark.parametrize(
    "query",
    ["", "   ", '"', "*", "NEAR AND OR", "((", "深度学习", "x" * 10000, "'; DROP TABLE papers; --"],
)
def test_bad_input_gives_no_error(topics_store: Engine, query: str) -> None:
    results = search_papers(topics_store, SearchRequest(query))
    assert results.query == " ".join(query.split())[:2000]
    assert results.total >= len(results.hits)
    if not query.strip():
        assert results.notice and results.hits == []


def test_the_query_is_embedded_early_but_the_corrected_one_is_searched(
    topics_store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The query's embedding starts before spelling is checked; a corrected query is embedded
    again, and its vector, not the typo's, finds the dense candidates."""
    from broadsheet.search import hybrid

    embedded: list[str] = []
    real = hybrid._query_vector

    def recording(model: str, query: str):
        embedded.append(query)
        return real(model, query)

    monkeypatch.setattr(hybrid, "_query_vector", recording)
    typo = search_papers(topics_store, SearchRequest("poolng", cutoff=False, limit=50))
    assert typo.corrected_query == "pooling"
    assert embedded == ["poolng", "pooling"]
    right = search_papers(topics_store, SearchRequest("pooling", cutoff=False, limit=50))
    assert [(h.paper["id"], h.dense) for h in typo.hits] == [
        (h.paper["id"], h.dense) for h in right.hits
    ]
    embedded.clear()
    search_papers(topics_store, SearchRequest("pooling", mode=Mode.lexical))
    assert embedded == []  # keyword searches never embed


def test_a_store_without_vectors_never_embeds_the_query(
    store: Engine, fixtures, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing embedded yet: the model is not asked for, not even ahead of time."""
    from broadsheet.ingest.runner import import_file
    from broadsheet.search import hybrid

    import_file(store, fixtures / "daily_papers" / "topics.json")

    def refuse(model: str, query: str):
        raise AssertionError(f"embedded {query!r} with no vectors stored")

    monkeypatch.setattr(hybrid, "_query_vector", refuse)
    results = search_papers(store, SearchRequest("pooling"))
    assert results.mode == Mode.lexical and results.hits
