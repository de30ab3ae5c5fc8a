"""Papers out over HTTP: .bib and .ris downloads, Highwire meta tags and COinS on the pages."""

from __future__ import annotations

from datetime import datetime
from html.parser import HTMLParser
from urllib.parse import parse_qs

import bibtexparser
import rispy
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from broadsheet.db.schema import papers
from broadsheet.papers.record import Paper
from broadsheet.papers.repository import upsert_papers

TITLE = 'Attention "Is" <All> You Need & 100% {more}'
PAPERS = [
    Paper(
        "2401.00001",
        TITLE,
        "Transformers replace recurrence with attention over sequences.",
        "test",
        version=3,
        authors=["Ashish Vaswani", "Noam Shazeer", "Zoë Müller"],
        categories=["cs.CL", "cs.LG"],
        published_at=datetime(2024, 1, 2, 9),
        updated_at=datetime(2024, 2, 3, 9),
        doi="10.1000/xyz",
    ),
    Paper(
        "hep-th/9901001",
        "Strings in old-style identifiers",
        "Attention to strings and branes.",
        "test",
        authors=["Ed Witten"],
        categories=["hep-th"],
        published_at=datetime(1999, 1, 1),
    ),
    Paper("scifact:7", "A claim about attention", "Attention claims.", "test"),
]


class HeadMeta(HTMLParser):
    """What Zotero's Embedded Metadata translator reads: <meta name content> in <head>."""

    def __init__(self) -> None:
        super().__init__()
        self.in_head = False
        self.tags: list[tuple[str, str]] = []
        self.coins: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "head":
            self.in_head = True
        elif tag == "meta" and self.in_head and (values.get("name") or "").startswith("citation_"):
            self.tags.append((values["name"], values.get("content") or ""))
        elif tag == "span" and "Z3988" in (values.get("class") or "").split():
            self.coins.append(values.get("title") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self.in_head = False


def read(html: str) -> HeadMeta:
    parser = HeadMeta()
    parser.feed(html)
    return parser


def titles(store: Engine) -> set[str]:
    with store.connect() as connection:
        return set(connection.execute(select(papers.c.title)).scalars())


def _add(store: Engine) -> None:
    with store.begin() as connection:
        upsert_papers(connection, PAPERS)


def test_a_paper_page_carries_what_zoteros_translator_reads(
    client: TestClient, store: Engine
) -> None:
    _add(store)
    tags = read(client.get("/papers/2401.00001").text).tags
    first = {name: content for name, content in reversed(tags)}
    # quotes and brackets survive the attribute (braces are LaTeX grouping, cleaned at import)
    assert first["citation_title"] == 'Attention "Is" <All> You Need & 100% more'

    assert [c for n, c in tags if n == "citation_author"] == PAPERS[0].authors
    assert first["citation_date"] == "2024/01/02"
    assert first["citation_arxiv_id"] == "2401.00001"
    assert first["citation_pdf_url"] == "https://arxiv.org/pdf/2401.00001"
    assert first["citation_doi"] == "10.1000/xyz"
    old = dict(read(client.get("/papers/hep-th/9901001").text).tags)
    assert old["citation_arxiv_id"] == "hep-th/9901001"
    other = dict(read(client.get("/papers/scifact:7").text).tags)
    assert "citation_arxiv_id" not in other and other["citation_title"] == PAPERS[2].title_raw


def test_bibtex_and_ris_of_one_paper(client: TestClient, store: Engine) -> None:
    _add(store)
    response = client.get("/papers/2401.00001.bib")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-bibtex")
    assert 'filename="2401.00001.bib"' in response.headers["content-disposition"]
    [entry] = bibtexparser.parse_string(response.text).entries
    assert entry["eprint"] == "2401.00001" and entry["primaryClass"] == "cs.CL"
    response = client.get("/papers/hep-th/9901001.ris")
    assert response.status_code == 200
    assert 'filename="hep-th_9901001.ris"' in response.headers["content-disposition"]
    [record] = rispy.loads(response.text)
    assert record["accession_number"] == "arXiv:hep-th/9901001"
    assert record["authors"] == ["Ed Witten"]
    # the page itself still answers beside its downloads, and links to them
    page = client.get("/papers/2401.00001").text
    assert 'href="/papers/2401.00001.bib"' in page and 'href="/papers/2401.00001.ris"' in page


def test_downloads_of_missing_or_hidden_papers_are_404_pages(
    client: TestClient, store: Engine
) -> None:
    _add(store)
    for path in ("/papers/2499.99999.bib", "/papers/nothing.ris", "/papers/.bib"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "text/html" in response.headers["content-type"]
    with store.begin() as connection:
        connection.execute(
            update(papers).where(papers.c.id == "2401.00001").values(hidden_at=datetime(2024, 3, 1))
        )
    assert client.get("/papers/2401.00001.bib").status_code == 404


def test_a_search_page_exports_its_own_results(client: TestClient, store: Engine) -> None:
    _add(store)
    page = client.get("/search", params={"q": "attention", "sort": "date"})
    shown = [paper_id for paper_id in ("2401.00001", "hep-th/9901001", "scifact:7")]
    assert "/search.bib?q=attention&amp;sort=date" in page.text
    coins = [parse_qs(title) for title in read(page.text).coins]
    assert {c["rft.atitle"][0] for c in coins} == titles(store)
    bib = client.get("/search.bib", params={"q": "attention", "sort": "date"})
    assert bib.status_code == 200
    assert 'filename="broadsheet-search.bib"' in bib.headers["content-disposition"]
    entries = bibtexparser.parse_string(bib.text).entries
    assert entries[0]["title"].startswith("Attention")  # newest first
    assert len(entries) == len(shown)
    records = rispy.loads(client.get("/search.ris", params={"q": "attention"}).text)
    assert {r["title"] for r in records} == titles(store)


def test_a_search_export_without_words_or_with_a_bad_field_says_which(
    client: TestClient, store: Engine
) -> None:
    response = client.get("/search.bib")
    assert response.status_code == 422 and "q field is empty" in response.text
    response = client.get("/search.ris", params={"q": "x", "since": "yesterday-ish"})
    assert response.status_code == 422 and "From" in response.text
