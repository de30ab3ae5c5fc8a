"""The arXiv API Atom parser and query parameters, against hand-written arXiv responses."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from broadsheet.papers.record import FeedPlacement
from broadsheet.sources.arxiv_api import (
    ArxivApiError,
    MalformedFeed,
    error_message,
    parse_feed,
    query_params,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "arxiv_api"
URL = "http://arxiv.test/api/query?start=2"


def _feed(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_query_params():
    params = query_params("cs.LG", date(2024, 1, 1), date(2024, 1, 31), start=200, max_results=100)
    assert params == {
        "search_query": "cat:cs.LG AND submittedDate:[202401010000 TO 202401312359]",
        "sortBy": "submittedDate",
        "sortOrder": "ascending",
        "start": "200",
        "max_results": "100",
    }


def test_paging_counts():
    page = parse_feed(_feed("page_2.xml"), category="cs.LG", url=URL)
    assert (page.total_results, page.start_index, page.items_per_page) == (5, 2, 2)
    assert [p.id for p in page.papers] == ["2401.01234", "2401.02345"]


def test_every_field_of_an_entry():
    paper = parse_feed(_feed("page_2.xml"), category="cs.LG", url=URL).papers[0]
    assert paper.id == "2401.01234"
    assert paper.version == 2
    assert paper.source == "arxiv_api"
    assert paper.title_raw == (
        "Linear-Time Attention via Sparse Kernel Sketches: Beyond\n"
        "  $\\mathcal{O}(n^2)$ Transformers"
    )
    assert paper.abstract_raw.startswith("  Self-attention costs $\\mathcal{O}(n^2)$ in the")
    assert "$\\mathcal{O}(n)$ time and\nmemory" in paper.abstract_raw
    assert paper.abstract_raw.endswith("\\url{https://example.org/ska}.\n")
    assert paper.authors == ["Maria Garc\\'ia", "Kenji Sato", "Priya Raman"]
    assert paper.categories == ["cs.LG", "cs.CL", "stat.ML"]
    assert paper.published_at == datetime(2024, 1, 2, 9, 15, 0)
    assert paper.updated_at == datetime(2024, 1, 4, 18, 22, 10)
    assert paper.comment == "Accepted at KDD 2024. 12 pages,\n  4 figures"
    assert paper.journal_ref == "Proc. KDD 2024, pp. 101-112"
    assert paper.doi == "10.1145/3580305.3599999"
    assert paper.links == {"pdf": "http://arxiv.org/pdf/2401.01234v2"}
    assert paper.feed == FeedPlacement(day=date(2024, 1, 2), source="harvest:cs.LG")
    assert paper.report_no is None and paper.license is None and paper.organisation is None


def test_optional_fields_absent():
    paper = parse_feed(_feed("page_1.xml"), category="cs.LG").papers[1]
    assert paper.id == "2401.00123" and paper.version == 1
    assert paper.authors == ["Wei Zhang"]
    assert paper.categories == ["cs.LG"]
    assert paper.comment is None and paper.doi is None and paper.journal_ref is None


def test_old_style_id_and_primary_category_first():
    paper = parse_feed(_feed("page_1.xml"), category="cs.LG").papers[0]
    assert paper.id == "math/0309136"
    assert paper.version == 2
    assert paper.categories == ["math.GT", "cs.LG"]
    assert paper.published_at == datetime(2003, 9, 8, 17, 32, 2)
    assert paper.feed == FeedPlacement(day=date(2003, 9, 8), source="harvest:cs.LG")
    assert paper.links == {"pdf": "http://arxiv.org/pdf/math/0309136v2"}
    assert paper.journal_ref == "Geom. Topol. 8 (2004) 123-145"


def test_namespaces_declared_on_the_feed_and_primary_listed_after_others():
    page = parse_feed(_feed("page_3.xml"), category="cs.LG")
    assert (page.total_results, page.start_index, page.items_per_page) == (5, 4, 2)
    (paper,) = page.papers
    assert paper.id == "2401.03456" and paper.version == 3
    assert paper.categories == ["stat.ML", "cs.LG"]
    assert paper.authors == ["Lukas Novak", "Emma Svensson"]
    assert paper.comment == "v3: added experiments on ogbn-arxiv"
    assert "$h < 0.3$" in paper.abstract_raw
    assert paper.links == {"pdf": "https://arxiv.org/pdf/2401.03456v3"}


def test_empty_page():
    page = parse_feed(_feed("empty_page.xml"), category="cs.LG")
    assert page.papers == [] and page.total_results == 0 and page.start_index == 2


def test_error_feed_raises_with_its_summary():
    with pytest.raises(ArxivApiError, match="max_results must be non-negative") as caught:
        parse_feed(_feed("error.xml"), category="cs.LG", url=URL)
    assert caught.value.message == "max_results must be non-negative"
    assert URL in str(caught.value)
    assert error_message(_feed("error.xml")) == "max_results must be non-negative"
    assert error_message(_feed("page_1.xml")) is None
    assert error_message(b"<html>Bad gateway</html") is None


def test_malformed_entry_names_field_entry_and_url():
    with pytest.raises(MalformedFeed) as caught:
        parse_feed(_feed("malformed.xml"), category="cs.LG", url=URL)
    error = caught.value
    assert (error.field, error.entry, error.url) == ("title", 2, URL)
    assert str(error) == f"{URL}: entry 2: field 'title': missing"


def _page_2_with(old: str, new: str) -> bytes:
    text = _feed("page_2.xml").decode()
    assert old in text
    return text.replace(old, new, 1).encode()


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ("<id>http://arxiv.org/abs/2401.01234v2</id>", "", "id", "missing"),
        (
            "<id>http://arxiv.org/abs/2401.01234v2</id>",
            "<id>http://arxiv.org/abs/2413.01234</id>",
            "id",
            "not a month",
        ),
        (
            "<published>2024-01-02T09:15:00Z</published>",
            "<published>yesterday</published>",
            "published",
            "not a date",
        ),
        ("<published>2024-01-02T09:15:00Z</published>", "", "published", "missing"),
    ],
)
def test_bad_entry_fields(old: str, new: str, field: str, message: str):
    with pytest.raises(MalformedFeed, match=message) as caught:
        parse_feed(_page_2_with(old, new), category="cs.LG", url=URL)
    assert (caught.value.field, caught.value.entry) == (field, 1)
    assert f"entry 1: field '{field}'" in str(caught.value)


def test_empty_title_is_malformed():
    content = _page_2_with(
        "On the Calibration of Large Language Models under Distribution Shift", "  "
    )
    with pytest.raises(MalformedFeed, match="entry 2: field 'title': empty"):
        parse_feed(content, category="cs.LG", url=URL)


def test_not_xml_or_not_a_feed():
    with pytest.raises(MalformedFeed, match="not valid XML"):
        parse_feed(b"<html><body>Service Unavailable", category="cs.LG", url=URL)
    with pytest.raises(MalformedFeed, match="expected an Atom <feed>"):
        parse_feed(b"<html><body>Service Unavailable</body></html>", category="cs.LG", url=URL)


def test_missing_total_results():
    content = _page_2_with(
        '<opensearch:totalResults xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">5'
        "</opensearch:totalResults>",
        "",
    )
    with pytest.raises(MalformedFeed, match="field 'opensearch:totalResults': missing"):
        parse_feed(content, category="cs.LG", url=URL)
