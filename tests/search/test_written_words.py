"""Short queries: papers holding the words as written before those matching only their stems."""

from __future__ import annotations

from sqlalchemy import Engine, select

from broadsheet.db.schema import papers
from broadsheet.papers.record import Paper
from broadsheet.papers.repository import upsert_papers
from broadsheet.search.hybrid import Mode, SearchRequest, search_papers
from broadsheet.search.written_words import (
    favour_written_words,
    is_short,
    singular_forms,
    word_patterns,
)

PAPERS = [
    (
        "2401.00001",
        "Surface normal estimation",
        "Normals of surfaces: we estimate the normal of each point, normal maps and normal fields.",
    ),
    (
        "2401.00002",
        "Training deep networks faster",
        "We show that normalization of activations speeds up training of deep networks.",
    ),
    (
        "2401.00003",
        "Weighted model averaging",
        "Averaging the weights of models trained apart, weight by weight, improves reward models.",
    ),
    (
        "2401.00004",
        "Balancing long sequences",
        "A loss weighting method balances the contribution of each sequence during packing.",
    ),
]


def _import(store: Engine) -> dict[str, int]:
    with store.begin() as connection:
        upsert_papers(
            connection,
            [Paper(id=i, title_raw=t, abstract_raw=a, source="test") for i, t, a in PAPERS],
        )
        rows = connection.execute(select(papers.c.id, papers.c.seq))
        return {paper_id: seq for paper_id, seq in rows}


def _titles(store: Engine, query: str) -> list[str]:
    found = search_papers(store, SearchRequest(query, mode=Mode.lexical, cutoff=False))
    return [hit.paper["title"] for hit in found.hits]


def test_a_one_word_query_ranks_papers_saying_it_above_those_sharing_its_stem(
    store: Engine,
) -> None:
    _import(store)
    # "normalization" and "normal" share the stem "normal"; "weighting" and "weight" "weight"
    assert _titles(store, "normalization")[0] == "Training deep networks faster"
    assert _titles(store, "weighting")[0] == "Balancing long sequences"
    assert _titles(store, "Normalizations")[0] == "Training deep networks faster"  # plural, case


def test_long_queries_keep_the_stems_order(store: Engine) -> None:
    seqs = _import(store)
    hits = [(seqs["2401.00001"], 3.0), (seqs["2401.00002"], 1.0)]
    query = "normalization of surface meshes by estimation"
    assert not is_short(query)
    with store.connect() as connection:
        assert favour_written_words(connection, query, hits) == hits
        # the same hits for a short query: the paper saying "normalization" doubles
        assert favour_written_words(connection, "normalization", hits) == [
            (seqs["2401.00001"], 3.0),
            (seqs["2401.00002"], 2.0),
        ]
        assert favour_written_words(connection, "normalization", []) == []


def test_stop_words_alone_are_no_short_query() -> None:
    assert not is_short("of the")
    assert is_short("logit normalization")
    assert not is_short("loss based sample reweighting")


def test_a_plural_query_word_matches_its_singular() -> None:
    assert singular_forms("normalizations") == ["normalizations", "normalization"]
    assert singular_forms("processes") == ["processes", "process", "processe"]
    assert singular_forms("loss") == ["loss"]  # not "los"
    [pattern] = word_patterns("Processes")
    assert pattern.search("a stochastic process") and pattern.search("PROCESSES")
    assert not pattern.search("processing")
