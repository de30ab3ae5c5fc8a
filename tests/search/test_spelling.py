"""Spelling correction from the store's own words: typos find what the words mean."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from broadsheet.db.schema import papers
from broadsheet.db.version import bump_version
from broadsheet.ingest.runner import import_file
from broadsheet.search import spelling
from broadsheet.search.highlight import MARK_END, MARK_START
from broadsheet.search.hybrid import Mode, SearchRequest, search_papers
from broadsheet.search.spelling import (
    Vocabulary,
    correct_query,
    read_vocabulary,
    vocabularies,
)

TYPOS = "transfomer atention mechansim"


@pytest.fixture
def daily_store(store: Engine, daily_papers_file: Path) -> Engine:
    import_file(store, daily_papers_file)
    return store


def _text(hit) -> str:
    return f"{hit.paper['title']} {hit.paper['abstract']}".lower()


def test_typos_find_attention_papers_first(daily_store: Engine) -> None:
    results = search_papers(daily_store, SearchRequest(TYPOS))
    assert results.corrected_query == "transformer attention mechanism"
    assert results.query == TYPOS
    assert len(results.hits) >= 3
    assert all("attention" in _text(hit) for hit in results.hits[:3])
    marked = f"{results.hits[0].title_highlight} {results.hits[0].abstract_highlight}".lower()
    assert f"{MARK_START}attention{MARK_END}" in marked  # the corrected words are highlighted


def test_the_words_as_typed_find_nothing_close(daily_store: Engine) -> None:
    results = search_papers(daily_store, SearchRequest(TYPOS, spell=False))
    assert results.corrected_query is None and results.total == 0
    assert results.notice.startswith(f"No close matches for “{TYPOS}”")


@pytest.mark.parametrize(
    "query",
    [
        "attention mechanism",
        "large language models",
        "reinforcement learning from human feedback",
        "Denny Zhou",
        "diffusion",
    ],
)
def test_correct_spelling_is_never_rewritten(daily_store: Engine, query: str) -> None:
    assert correct_query(daily_store, query) is None
    assert search_papers(daily_store, SearchRequest(query)).corrected_query is None


def test_no_title_of_the_store_is_rewritten(daily_store: Engine) -> None:
    with daily_store.connect() as connection:
        titles = list(connection.execute(select(papers.c.title)).scalars())
    rewritten = {t: c.words for t in titles if (c := correct_query(daily_store, t))}
    assert len(titles) > 700 and rewritten == {}


def test_gibberish_still_finds_no_close_matches(daily_store: Engine) -> None:
    results = search_papers(daily_store, SearchRequest("zxqvw plokjh"))
    assert results.corrected_query is None and results.total == 0 and results.hits == []
    assert results.notice.startswith("No close matches")


@pytest.mark.parametrize("query", ["2402.10200", "gpt5 llm", "atn", "modl", "qwen2.5", "lstm-7b"])
def test_numbers_ids_and_short_words_are_left_alone(daily_store: Engine, query: str) -> None:
    assert correct_query(daily_store, query) is None


def test_only_unknown_words_change_and_case_is_kept(daily_store: Engine) -> None:
    correction = correct_query(daily_store, "Langauge models for CODNG and grpahs, 2024")
    assert correction is not None
    assert correction.query == "Language models for CODNG and graphs, 2024"
    assert correction.words == {"langauge": "language", "grpahs": "graphs"}


@pytest.mark.parametrize("query", ["UreH", "ComYMV genome", "tTregs", "Mims syndrome"])
def test_acronyms_and_names_with_capitals_inside_are_left_alone(
    daily_store: Engine, query: str
) -> None:
    assert correct_query(daily_store, query) is None


def test_swapped_letters_beat_a_more_frequent_word_one_edit_away() -> None:
    vocabulary = Vocabulary.of({"cases": 900, "causes": 40, "cultured": 30})
    assert vocabulary.closest("casues") == ("causes", 1)
    assert vocabulary.closest("uncultured") is None  # a prefix is not a typo
    assert vocabulary.closest("causes") is None  # a word of the store is never corrected


def test_a_corrected_query_counts_as_a_match_in_hybrid_search(topics_store: Engine) -> None:
    as_typed = search_papers(topics_store, SearchRequest("poolng", spell=False))
    assert as_typed.total == 0  # unknown word, not close in meaning: "no close matches"
    results = search_papers(topics_store, SearchRequest("poolng"))
    assert results.mode == Mode.hybrid and results.corrected_query == "pooling"
    assert results.hits and "pool" in _text(results.hits[0])


def _new_papers(path: Path, title: str, count: int) -> Path:
    entries = []
    for n in range(1, count + 1):
        paper = {"id": f"2412.{90000 + n:05d}", "title": title, "summary": f"{title}, part {n}."}
        paper |= {"authors": [{"name": "Ada Lovelace"}], "publishedAt": "2024-05-01T09:00:00Z"}
        entries.append({"paper": paper, "title": title, "publishedAt": paper["publishedAt"]})
    path.write_text(json.dumps(entries))
    return path


def test_the_vocabulary_is_read_once_per_content(daily_store: Engine, tmp_path: Path) -> None:
    vocabularies.clear()
    first = vocabularies.get(daily_store)
    assert vocabularies.get(daily_store) is first
    with daily_store.begin() as connection:  # a vote: the version moves, the words do not
        bump_version(connection)
    assert vocabularies.get(daily_store) is first
    import_file(daily_store, _new_papers(tmp_path / "new.json", "Quokkanisation of graphs", 2))
    renewed = vocabularies.get(daily_store)
    assert renewed is not first and renewed.docs["quokkanisation"] == 2
    assert correct_query(daily_store, "quokanisation").words == {"quokanisation": "quokkanisation"}


def test_the_vocabulary_is_bounded(daily_store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    with daily_store.connect() as connection:
        full = read_vocabulary(connection)
        assert min(full.docs.values()) >= 2  # words of one paper only are left out
        monkeypatch.setattr(spelling, "MAX_WORDS", 500)
        capped = read_vocabulary(connection)
    assert len(capped.docs) == 500 < len(full.docs)
    assert set(capped.docs) <= set(full.docs)
