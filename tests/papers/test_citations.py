"""BibTeX, RIS, Highwire tags and COinS, read back by the parsers reference managers use."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import parse_qs

import bibtexparser
import pytest
import rispy
from bibtexparser.middlewares import LatexDecodingMiddleware, SeparateCoAuthors
from sqlalchemy import Engine, select

from broadsheet.db.schema import papers
from broadsheet.ingest.runner import import_file
from broadsheet.papers.citations import (
    bibtex,
    citation_key,
    coins,
    highwire_tags,
    latex_escaped,
    ris,
    unique_keys,
)

BASE = "https://papers.example.org"
NASTY = {
    "id": "2401.00001",
    "title": "100% of {unbalanced} braces } & $x^2$ in C:\\path with_under #1 ~ok\nand a newline",
    "authors": ["Research and Development Team", "Smith, Jr., John", "Zoë Müller-Łukasz"],
    "abstract": "Line one.\n\nLine two\twith a tab.",
    "published_at": datetime(2024, 1, 2, 9),
    "updated_at": datetime(2024, 2, 3, 9),
    "primary_category": "cs.CL",
    "categories": "cs.CL cs.LG",
    "doi": "10.1000/xyz{1}",
    "journal_ref": "Proc. of Things & Stuff, 2024",
}


def parse_bibtex(text: str) -> bibtexparser.Library:
    library = bibtexparser.parse_string(
        text, append_middleware=[SeparateCoAuthors(), LatexDecodingMiddleware()]
    )
    assert not library.failed_blocks, [b.error for b in library.failed_blocks]
    return library


def stored_papers(store: Engine) -> list[dict]:
    with store.connect() as connection:
        rows = connection.execute(select(papers).order_by(papers.c.seq)).mappings()
        return [dict(row) for row in rows]


def test_the_shared_daily_papers_export_as_bibtex_that_parses_with_ids_and_authors(
    store: Engine, daily_papers_file
) -> None:
    import_file(store, daily_papers_file)
    rows = stored_papers(store)
    assert len(rows) > 700
    library = parse_bibtex(bibtex(rows, BASE))
    assert len(library.entries) == len(rows)
    assert len({entry.key for entry in library.entries}) == len(rows)  # unique keys
    for row, entry in zip(rows, library.entries, strict=True):
        assert entry.entry_type == "misc"
        assert entry["eprint"] == row["id"]
        assert entry["archivePrefix"] == "arXiv"
        assert entry["url"] == f"https://arxiv.org/abs/{row['id']}"
        authors = entry["author"] if "author" in entry.fields_dict else []
        assert [a.strip("{}") for a in authors] == [" ".join(a.split()) for a in row["authors"]]
        assert entry["year"] == str(row["published_at"].year)


def test_the_shared_daily_papers_export_as_ris_that_rispy_reads(
    store: Engine, daily_papers_file
) -> None:
    import_file(store, daily_papers_file)
    rows = stored_papers(store)
    records = rispy.loads(ris(rows, BASE))
    assert len(records) == len(rows)
    for row, record in zip(rows, records, strict=True):
        assert record["type_of_reference"] == "UNPB"
        assert record["accession_number"] == f"arXiv:{row['id']}"
        assert record.get("authors", []) == [" ".join(a.split()) for a in row["authors"]]
        assert record["file_attachments1"] == f"https://arxiv.org/pdf/{row['id']}"


def test_special_characters_cannot_break_a_bibtex_file() -> None:
    text = bibtex([NASTY, {**NASTY, "id": "2401.00002"}], BASE)
    library = parse_bibtex(text)
    first, second = library.entries
    assert first.key == "team2024100" and second.key == "team2024100a"
    assert "\n" not in first["title"]
    title = first["title"].replace("ˆ", "^")  # pylatexenc reads \textasciicircum as U+02C6
    assert title.startswith("100% of {unbalanced} braces } & $x^2$ in C:\\path with_under #1 ~ok")
    # a name holding "and" or a comma stays one author
    assert first["author"] == [
        "{Research and Development Team}",
        "{Smith, Jr., John}",
        "Zoë Müller-Łukasz",
    ]
    assert first["doi"] == "10.1000/xyz{1}"
    assert first["note"] == "Proc. of Things & Stuff, 2024"
    assert first["month"] == "jan"
    assert first["primaryClass"] == "cs.CL"


def test_latex_escaping() -> None:
    assert latex_escaped("a_b & c%") == r"a\_b \& c\%"
    assert latex_escaped("\\x{y}") == r"\textbackslash{}x\{y\}"
    assert latex_escaped("x^2 ~ y") == r"x\textasciicircum{}2 \textasciitilde{} y"
    assert latex_escaped(None) == ""


def test_keys_fold_accents_skip_stop_words_and_never_start_with_a_digit() -> None:
    paper = {"id": "2401.1", "title": "The Über model", "authors": ["Zoë Müller"]}
    assert citation_key({**paper, "published_at": datetime(2024, 1, 1)}) == "muller2024uber"
    assert citation_key({"id": "2401.00003", "title": "", "authors": []}) == "paper240100003"
    assert citation_key({"id": "x", "title": "3D worlds", "authors": []}) == "paperx"
    many = [{"id": str(i), "title": "Same", "authors": ["A B"]} for i in range(30)]
    keys = unique_keys(many)
    assert len(set(keys)) == 30
    assert keys[:3] == ["bsame", "bsamea", "bsameb"] and keys[27] == "bsameaa"


def test_ris_is_one_line_per_field() -> None:
    [record] = rispy.loads(ris([NASTY], BASE))
    assert record["title"].endswith("#1 ~ok and a newline")
    assert record["abstract"] == "Line one. Line two with a tab."
    assert record["keywords"] == ["cs.CL", "cs.LG"]
    assert record["date"] == "2024/01/02"
    assert record["notes"] == ["Proc. of Things & Stuff, 2024"]


def test_papers_of_other_corpora_link_to_this_site_and_have_no_arxiv_fields() -> None:
    paper = {"id": "scifact:42", "title": "A claim", "authors": [], "published_at": None}
    library = parse_bibtex(bibtex([paper], BASE))
    [entry] = library.entries
    assert entry["url"] == f"{BASE}/papers/scifact:42"
    assert "eprint" not in entry and "archivePrefix" not in entry
    tags = dict(highwire_tags(paper, BASE))
    assert "citation_arxiv_id" not in tags and "citation_pdf_url" not in tags
    # a host taken from the request cannot close the braced value
    [entry] = parse_bibtex(bibtex([paper], "http://evil}, title={x")).entries
    assert entry["title"] == "A claim"


def test_highwire_tags_follow_arxiv_pages() -> None:
    tags = highwire_tags(NASTY, BASE)
    names = [name for name, _ in tags]
    assert names.count("citation_author") == 3
    as_dict = dict(tags)
    assert as_dict["citation_date"] == "2024/01/02"
    assert as_dict["citation_online_date"] == "2024/02/03"
    assert as_dict["citation_pdf_url"] == "https://arxiv.org/pdf/2401.00001"
    assert as_dict["citation_arxiv_id"] == "2401.00001"
    assert "\n" not in as_dict["citation_title"]


def test_coins_carry_title_authors_date_and_ids() -> None:
    fields = parse_qs(coins(NASTY, BASE))
    assert fields["ctx_ver"] == ["Z39.88-2004"]
    assert fields["rft.atitle"][0].startswith("100% of {unbalanced}")
    assert fields["rft.au"] == NASTY["authors"]
    assert fields["rft.date"] == ["2024-01-02"]
    assert "info:arxiv/2401.00001" in fields["rft_id"]
    assert "info:doi/10.1000/xyz{1}" in fields["rft_id"]
    crowd = {**NASTY, "authors": [f"Author {i}" for i in range(3000)]}
    assert len(parse_qs(coins(crowd, BASE))["rft.au"]) == 100


@pytest.mark.parametrize("title", ["}", "{", "\\", "%", "a}b{c", "\\}"])
def test_any_single_special_character_title_parses(title: str) -> None:
    [entry] = parse_bibtex(bibtex([{**NASTY, "title": title}], BASE)).entries
    assert entry["title"] == title
