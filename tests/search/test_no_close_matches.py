"""Queries with nothing close (gibberish, stop words only) answer with no results, and say so."""

from __future__ import annotations

import random
import string
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from broadsheet.cli import app
from broadsheet.config import get_settings
from broadsheet.search import evaluate
from broadsheet.search.filters import SearchFilters
from broadsheet.search.fusion import WEAK_COSINE
from broadsheet.search.hybrid import Mode, SearchRequest, nothing_close, retrieve, search_papers
from web.conftest import make_client

NOTHING = ["zxqvw plokjh", "the of and", "of the", "asdf", "lorem ipsum dolor"]


@pytest.mark.parametrize("query", NOTHING)
def test_nothing_close_answers_no_results_and_says_so(topics_store: Engine, query: str) -> None:
    results = search_papers(topics_store, SearchRequest(query))
    assert results.hits == [] and results.total == 0
    assert results.notice == f"No close matches for “{query}”."


def test_without_the_cutoff_everything_is_listed(topics_store: Engine) -> None:
    results = search_papers(topics_store, SearchRequest("zxqvw plokjh", cutoff=False, limit=50))
    assert results.total == 12 and results.notice is None


@pytest.mark.parametrize(
    ("query", "first"),
    [
        # no word of it is in the store, but it is close in meaning (cosine 0.36)
        ("summarising a bag of items as a single representation", "2401.00001"),
        ("quantum error correction", "2401.00009"),
        ("galaxy formation", "2401.00005"),
    ],
)
def test_real_queries_are_unaffected(topics_store: Engine, query: str, first: str) -> None:
    results = search_papers(topics_store, SearchRequest(query))
    assert results.hits[0].paper["id"] == first and results.notice is None


def test_a_named_author_is_still_found(topics_store: Engine) -> None:
    results = search_papers(topics_store, SearchRequest("Ada Lovelace"))
    assert results.hits and "Ada Lovelace" in results.hits[0].paper["authors"]
    assert results.notice is None


def test_keywords_alone_still_refuse_stop_words(topics_store: Engine) -> None:
    stop_words = search_papers(topics_store, SearchRequest("the of and", mode=Mode.lexical))
    assert stop_words.total == 0 and stop_words.notice.startswith("No close matches")
    assert search_papers(topics_store, SearchRequest("pooling", mode=Mode.lexical)).total >= 1


def test_api_and_cli_agree(
    topics_store: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = str(topics_store.url)
    with make_client(url) as client:
        api = client.get("/api/papers/search", params={"q": "zxqvw plokjh"}).json()
        page = client.get("/search", params={"q": "zxqvw plokjh"})
    monkeypatch.setenv("BROADSHEET_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        cli = CliRunner().invoke(app, ["search", "zxqvw plokjh", "--json"])
    finally:
        get_settings.cache_clear()
    assert cli.exit_code == 0, cli.output
    from_cli = orjson.loads(cli.stdout)
    assert api["total"] == from_cli["total"] == 0
    assert api["results"] == from_cli["results"] == []
    assert api["notice"] == from_cli["notice"] == "No close matches for “zxqvw plokjh”."
    assert page.status_code == 200
    assert "No close matches for “zxqvw plokjh”" in page.text
    assert 'class="card"' not in page.text
    assert "Nothing to show: try other words." in page.text


def _gibberish(count: int) -> list[str]:
    rng = random.Random(12)

    def word() -> str:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 9)))

    return [" ".join(word() for _ in range(rng.randint(1, 4))) for _ in range(count)]


def test_scifact_queries_are_never_cut_and_gibberish_mostly_is(scifact_dir: Path) -> None:
    """Measured on SciFact (5,183 abstracts): real test queries keep their results."""
    split = evaluate.load_split(scifact_dir, "test")
    store = evaluate.default_store_path(scifact_dir, "all-MiniLM-L6-v2")
    engine, _, _ = evaluate.prepare_store(scifact_dir, "all-MiniLM-L6-v2", store)
    candidates = evaluate.collect_candidates(engine, split, "all-MiniLM-L6-v2")
    cut = [q for q, found in candidates.items() if nothing_close(split.queries[q], found)]
    assert cut == []
    best = sorted(found.dense[0][1] for found in candidates.values())
    assert best[0] > WEAK_COSINE  # even without any word in common, none would be cut
    gibberish = _gibberish(60)
    found = [retrieve(engine, q, Mode.hybrid, SearchFilters()) for q in gibberish]
    refused = sum(nothing_close(q, f) for q, f in zip(gibberish, found, strict=True))
    assert refused / len(gibberish) >= 0.75
