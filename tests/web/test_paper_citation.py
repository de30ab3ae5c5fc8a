"""The paper page shows the arXiv id as text and a citation line that can be copied."""

from __future__ import annotations

import re
from datetime import datetime

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from broadsheet.papers.record import Paper
from broadsheet.papers.repository import upsert_papers


def add(store: Engine, paper: Paper) -> None:
    with store.begin() as connection:
        upsert_papers(connection, [paper])


def test_arxiv_id_with_version_and_citation(client: TestClient, store: Engine) -> None:
    add(
        store,
        Paper(
            "2402.10200",
            "Chain-of-Thought Reasoning Without Prompting",
            "We find that chains of thought appear when decoding differently.",
            "test",
            version=2,
            authors=["Xuezhi Wang", "Denny Zhou"],
            published_at=datetime(2024, 2, 15, 9),
        ),
    )
    page = client.get("/papers/2402.10200").text
    assert re.search(r">\s*arXiv:2402\.10200v2\s*<", page)
    citation = re.search(r'<code class="citation" id="citation">([^<]*)</code>', page)
    assert citation, "no citation block"
    assert citation.group(1) == (
        "Xuezhi Wang, Denny Zhou. Chain-of-Thought Reasoning Without Prompting. "
        "arXiv:2402.10200v2, 2024."
    )
    assert 'data-copy="citation"' in page  # app.js copies it; no inline script
    assert "onclick" not in page


def test_long_author_lists_and_no_version(client: TestClient, store: Engine) -> None:
    authors = [f"Author {n}" for n in range(12)]
    add(store, Paper("2401.00001", "Many <hands>", "Text.", "test", authors=authors))
    page = client.get("/papers/2401.00001").text
    assert re.search(r">\s*arXiv:2401\.00001\s*<", page)
    citation = re.search(r'<code class="citation" id="citation">([^<]*)</code>', page)
    assert citation and citation.group(1) == "Author 0 et al. Many &lt;hands&gt;. arXiv:2401.00001."


def test_other_corpora_have_a_citation_without_arxiv(client: TestClient, store: Engine) -> None:
    add(store, Paper("scifact:42", "A claim", "Text.", "test", authors=["A. Person"]))
    page = client.get("/papers/scifact:42").text
    assert "arXiv:" not in page
    citation = re.search(r'<code class="citation" id="citation">([^<]*)</code>', page)
    assert citation and citation.group(1) == "A. Person. A claim."
