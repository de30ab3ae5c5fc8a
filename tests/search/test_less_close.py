"""The relevance cut-off on topic queries: papers holding every word of the query always pass,
and what falls below it is counted and offered ("N more, less close") instead of dropped."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from broadsheet.cli import app
from broadsheet.config import get_settings
from broadsheet.db.schema import papers
from broadsheet.ingest.runner import import_file
from broadsheet.search import keyword_index
from broadsheet.search.fusion import MIN_FUSED, STRONG_COSINE
from broadsheet.search.hybrid import SearchRequest, search_papers
from broadsheet.search.indexing import index_papers
from broadsheet.search.written_words import holding_every_word, query_index_terms
from web.conftest import make_client

NOTHING = ["zxqvw plokjh", "the of and", "lorem ipsum dolor"]
QUERY = "layer normalization"
# A long abstract about something else that says "layer" and "normalization" once each: its
# keyword score is a fraction of the best and its vector is about rainfall.
PASSING_MENTION = "2401.00013"
RAINFALL = (
    "We forecast daily rainfall over river basins from geostationary satellite radiances, rain "
    "gauges and reanalysis fields. A convolutional encoder reads the radiance images; its last "
    "layer feeds a recurrent decoder that steps through the forecast horizon. Gauge records are "
    "sparse and biased toward valleys, so we correct them with kriging before training, and the "
    "inputs pass a per-channel normalization computed over ten years of data. Against numerical "
    "weather prediction the model halves the error of three-day forecasts in monsoon months and "
    "keeps its skill in dry seasons, and flood warnings issued from it arrive a day earlier."
)


@pytest.fixture
def with_passing_mention(topics_store: Engine, embedder, tmp_path: Path) -> Engine:
    """The topic store with the rainfall paper added and embedded."""
    title = "Forecasting regional rainfall from satellite radiances"
    day = "2024-01-12T09:00:00Z"
    entry = {
        "paper": {
            "id": PASSING_MENTION,
            "title": title,
            "summary": RAINFALL,
            "authors": [{"name": "Mary Somerville"}],
            "publishedAt": day,
            "upvotes": 1,
        },
        "title": title,
        "publishedAt": day,
    }
    path = tmp_path / "rainfall.json"
    path.write_text(json.dumps([entry]))
    import_file(topics_store, path)
    index_papers(topics_store, embedder)
    return topics_store


def _ids(hits) -> list[str]:
    return [hit.paper["id"] for hit in hits]


def test_a_paper_holding_every_word_passes_below_the_cutoff(with_passing_mention: Engine) -> None:
    everything = search_papers(with_passing_mention, SearchRequest(QUERY, cutoff=False))
    mention = next(h for h in everything.hits if h.paper["id"] == PASSING_MENTION)
    assert mention.score < MIN_FUSED and mention.dense < STRONG_COSINE  # below on both sides

    results = search_papers(with_passing_mention, SearchRequest(QUERY))
    assert _ids(results.hits)[:2] == ["2401.00002", PASSING_MENTION]
    kept = results.hits[1]
    assert not kept.less_close
    assert kept.explanation.kept_because == "holds every word of the query"


def test_every_word_means_every_content_word_as_stemmed(with_passing_mention: Engine) -> None:
    with with_passing_mention.connect() as connection:
        seqs = dict(connection.execute(select(papers.c.id, papers.c.seq)).all())
        by_seq = {seq: pid for pid, seq in seqs.items()}

        def holding(query: str) -> set[str]:
            return {by_seq[s] for s in holding_every_word(connection, query, list(by_seq))}

        both = {"2401.00002", PASSING_MENTION}
        assert holding("layer normalization") == both
        assert holding("the normalized layers") == both  # stop words aside, stems alike
        assert holding("layer normalization rainfall") == {PASSING_MENTION}
        assert holding("the of and") == set()


def test_every_term_check_agrees_with_the_index_tokenizer(daily_papers_file: Path) -> None:
    """The quick check (words split once, a cue per term) against the full tokenizer, on real
    abstracts and on words Porter rewrites ("sensibility" -> "sensibl") or folds ("Über")."""
    entries = orjson.loads(daily_papers_file.read_bytes())
    texts = [f"{e['paper']['title']} {e['paper']['summary']}" for e in entries]
    texts += ["The sensibility of relational models", "Über-große Modelle, naïvely", "GPT-4 x"]
    queries = [
        "layer normalization",
        "state space models",
        "mixture of experts",
        "sensible relations",
        "uber naive",
        "GPT-4",
        "Vitamin D deficiency is associated with tuberculosis in adults",
    ]
    terms = [found.keys() for found, _ in keyword_index.documents_terms([(None, t) for t in texts])]
    for query in queries:
        wanted = query_index_terms(query)
        expected = [wanted <= held for held in terms]
        assert keyword_index.hold_every_term(texts, wanted) == expected, query
        assert any(expected) or query.startswith("Vitamin"), query


def test_less_close_results_are_counted_and_listed_on_request(topics_store: Engine) -> None:
    shown = search_papers(topics_store, SearchRequest(QUERY))
    assert shown.less_close >= 1
    assert not any(hit.less_close for hit in shown.hits)

    more = search_papers(topics_store, SearchRequest(QUERY, more=True))
    assert more.total == shown.total + shown.less_close and more.less_close == shown.less_close
    assert _ids(more.hits)[: shown.total] == _ids(shown.hits)
    tail = more.hits[shown.total :]
    assert len(tail) == shown.less_close and all(hit.less_close for hit in tail)
    assert all(hit.explanation.kept_because.startswith("less close") for hit in tail)
    # paged: the tail continues where the results above the cut-off end
    second = search_papers(topics_store, SearchRequest(QUERY, more=True, offset=shown.total))
    assert _ids(second.hits) == _ids(tail)


@pytest.mark.parametrize("query", NOTHING)
def test_nothing_close_offers_nothing_less_close(topics_store: Engine, query: str) -> None:
    results = search_papers(topics_store, SearchRequest(query, more=True))
    assert results.hits == [] and results.total == 0 and results.less_close == 0


def test_page_api_and_cli_offer_the_less_close(
    topics_store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = search_papers(topics_store, SearchRequest(QUERY, more=True))
    count = expected.less_close
    tail = [hit.paper["id"] for hit in expected.hits if hit.less_close]
    url = str(topics_store.url)
    with make_client(url) as client:
        page = client.get("/search", params={"q": QUERY})
        assert page.status_code == 200
        assert f"{count} more, less close" in page.text
        assert 'id="less-close-offer"' in page.text  # the last page offers them too
        link = page.text.split(f'">{count} more, less close</a>')[0].rsplit('href="', 1)[1]
        address = urlsplit(link.replace("&amp;", "&"))
        assert parse_qs(address.query)["more"] == ["1"] and address.fragment == "less-close"
        more_page = client.get(f"{address.path}?{address.query}")
        assert more_page.status_code == 200
        assert '<h2 id="less-close">Less close</h2>' in more_page.text
        assert f"the last {count} less close" in more_page.text
        tail_html = more_page.text.split('id="less-close"')[1]
        assert all(f"/papers/{pid}" in tail_html for pid in tail)
        bibtex = client.get("/search.bib", params={"q": QUERY, "more": "1"}).text  # this page
        assert all(pid in bibtex for pid in tail)

        api = client.get("/api/papers/search", params={"q": QUERY}).json()
        assert api["less_close"] == count
        assert not any(hit["less_close"] for hit in api["results"])
        api_more = client.get("/api/papers/search", params={"q": QUERY, "more": "true"}).json()
        assert api_more["total"] == api["total"] + count
        assert [h["paper"]["id"] for h in api_more["results"] if h["less_close"]] == tail

    monkeypatch.setenv("BROADSHEET_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        told = CliRunner().invoke(app, ["search", QUERY])
        listed = CliRunner().invoke(app, ["search", QUERY, "--more", "--json"])
    finally:
        get_settings.cache_clear()
    assert told.exit_code == 0, told.output
    assert f"{count} more, less close (add --more to list them)" in told.stdout
    assert listed.exit_code == 0, listed.output
    from_cli = orjson.loads(listed.stdout)
    assert from_cli["less_close"] == count
    assert [r["id"] for r in from_cli["results"] if r["less_close"]] == tail


def test_daily_papers_list_every_paper_holding_both_words(daily_store: Engine) -> None:
    with daily_store.connect() as connection:
        rows = connection.execute(select(papers.c.id, papers.c.title, papers.c.abstract)).all()
    terms = keyword_index.documents_terms([(title, abstract) for _, title, abstract in rows])
    holding = {
        row.id
        for row, (found, _) in zip(rows, terms, strict=True)
        if {"layer", "normal"} <= found.keys()
    }
    assert holding  # e.g. GALA: "layers" and "normalized"; Champ: "normal maps"
    results = search_papers(daily_store, SearchRequest(QUERY, limit=500))
    assert holding <= set(_ids(results.hits))
