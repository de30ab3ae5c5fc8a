"""A query that is an arXiv id (any spelling) puts that paper first, in search and the CLI."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, update
from typer.testing import CliRunner

from broadsheet.cli import app
from broadsheet.db.schema import papers
from broadsheet.search.filters import SearchFilters
from broadsheet.search.hybrid import SearchRequest, Sort, search_papers, typed_arxiv_id

SPELLINGS = [
    "2401.00007",
    "arXiv:2401.00007v2",
    "ARXIV:2401.00007",
    "https://arxiv.org/abs/2401.00007",
    "https://arxiv.org/abs/2401.00007v3",
    "http://arxiv.org/pdf/2401.00007v1",
    "https://arxiv.org/pdf/2401.00007.pdf",
    "arxiv.org/abs/2401.00007",
    "  2401.00007  ",
]


@pytest.mark.parametrize("query", SPELLINGS)
def test_typed_arxiv_id_reads_every_spelling(query: str) -> None:
    assert typed_arxiv_id(query) == "2401.00007"


@pytest.mark.parametrize("query", ["attention", "2401.00007 attention", "9999.99999", "", "2401"])
def test_other_queries_are_not_ids(query: str) -> None:
    assert typed_arxiv_id(query) is None


def ids(store: Engine, query: str, **options) -> list[str]:
    return [h.paper["id"] for h in search_papers(store, SearchRequest(query, **options)).hits]


def test_the_paper_whose_id_is_typed_comes_first(topics_store: Engine) -> None:
    for query in ["2401.00007", "arXiv:2401.00007v2", "https://arxiv.org/pdf/2401.00007v1"]:
        assert ids(topics_store, query)[0] == "2401.00007", query
    for sort in Sort:
        assert ids(topics_store, "2401.00005", sort=sort)[0] == "2401.00005", sort


def test_the_typed_paper_is_counted_once_and_paged_once(topics_store: Engine) -> None:
    everything = search_papers(topics_store, SearchRequest("2401.00003", cutoff=False, limit=50))
    shown = [h.paper["id"] for h in everything.hits]
    assert shown[0] == "2401.00003" and shown.count("2401.00003") == 1
    assert everything.total == len(shown)
    assert "2401.00003" not in ids(topics_store, "2401.00003", cutoff=False, offset=1, limit=50)


def test_filters_and_hiding_still_apply(topics_store: Engine) -> None:
    # 2401.00005 was published in 2023: a filter from 2024 on keeps it out
    assert "2401.00005" not in ids(
        topics_store, "2401.00005", filters=SearchFilters(since=date(2024, 1, 1))
    )
    with topics_store.begin() as connection:
        connection.execute(
            update(papers).where(papers.c.id == "2401.00009").values(hidden_at=date(2024, 2, 1))
        )
    assert "2401.00009" not in ids(topics_store, "2401.00009")


def test_cli_search_puts_the_typed_paper_first(cli: CliRunner, fixtures: Path) -> None:
    topics = fixtures / "daily_papers" / "topics.json"
    assert cli.invoke(app, ["import", str(topics)]).exit_code == 0
    for query in ["2401.00004", "https://arxiv.org/abs/2401.00004v2"]:
        result = cli.invoke(app, ["search", query, "--json", "--mode", "lexical"])
        assert result.exit_code == 0, result.output
        assert orjson.loads(result.stdout)["results"][0]["id"] == "2401.00004"
