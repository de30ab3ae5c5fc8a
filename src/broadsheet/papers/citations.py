"""Papers out to reference managers and LaTeX: BibTeX, RIS, Highwire meta tags and COinS.

Every function takes stored paper rows (``get_paper``, ``papers_by_seq``). arXiv papers get
arXiv's own fields (``eprint``, ``archivePrefix``, ``primaryClass``; ``citation_arxiv_id``)
and a link to their PDF; papers of other corpora link to their page on this site.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from broadsheet.papers.ids import is_arxiv_id

Paper = Mapping[str, Any]

_LATEX_SPECIAL = re.compile(r"[\\{}&%$#_^~]")
_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "^": r"\textasciicircum{}",  # not \^{}: an accent over nothing, dropped by some readers
    "~": r"\textasciitilde{}",
}
COINS_AUTHORS = 100  # a card's span stays small for papers with thousands of authors
_SPACES = re.compile(r"\s+")
_KEY_STOP_WORDS = frozenset(
    "a an the on of in for to and with by from towards toward is are".split()
)


def one_line(text: str | None) -> str:
    return _SPACES.sub(" ", text or "").strip()


def latex_escaped(text: str | None) -> str:
    """``text`` on one line with LaTeX's special characters escaped (so braces balance and
    ``%`` or ``_`` in a title cannot break a document)."""
    return _LATEX_SPECIAL.sub(
        lambda m: _LATEX_ESCAPES.get(m.group(), "\\" + m.group()), one_line(text)
    )


def _ascii_letters(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


def citation_key(paper: Paper) -> str:
    """First author's last name, year and first title word (``vaswani2017attention``)."""
    authors = paper.get("authors") or []
    last_name = _ascii_letters(authors[0].split()[-1]) if authors and authors[0].split() else ""
    published = paper.get("published_at")
    year = str(published.year) if isinstance(published, datetime) else ""
    words = [_ascii_letters(w) for w in one_line(paper.get("title")).split()]
    word = next((w for w in words if w and w not in _KEY_STOP_WORDS), "")
    key = f"{last_name}{year}{word}"
    return key if key and key[0].isalpha() else f"paper{_ascii_letters(paper['id']) or key}"


def keyed(papers: Iterable[Paper]) -> Iterator[tuple[Paper, str]]:
    """Each paper with its key, one at a time (a stream of any length keeps only the keys
    seen); repeats get a, b, c… as BibTeX files usually do."""
    seen: dict[str, int] = {}
    for paper in papers:
        key = citation_key(paper)
        count = seen.get(key, 0)
        seen[key] = count + 1
        yield paper, key if count == 0 else f"{key}{_suffix(count)}"


def unique_keys(papers: Iterable[Paper]) -> list[str]:
    """One key per paper, as ``keyed`` gives them."""
    return [key for _, key in keyed(papers)]


def _suffix(count: int) -> str:
    letters = ""
    while count:
        count, rest = divmod(count - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return letters


def _bibtex_name(name: str) -> str:
    """A name as one BibTeX author: braced when it holds a comma or the word "and", which
    BibTeX would otherwise read as "Last, First" or as two people."""
    escaped = latex_escaped(name)
    if "," in name or re.search(r"\band\b", name, re.IGNORECASE):
        return "{" + escaped + "}"
    return escaped


def paper_url(paper: Paper, base_url: str) -> str:
    if is_arxiv_id(paper["id"]):
        return f"https://arxiv.org/abs/{paper['id']}"
    return f"{base_url.rstrip('/')}/papers/{quote(paper['id'], safe=':/')}"


def pdf_url(paper: Paper) -> str | None:
    return f"https://arxiv.org/pdf/{paper['id']}" if is_arxiv_id(paper["id"]) else None


def _bibtex_url(url: str) -> str:
    """``url`` with what would end a braced BibTeX value percent-encoded (the site's address
    may come from the request's Host header)."""
    return re.sub(r"[{}\\\s]", lambda m: quote(m.group()), url)


def bibtex_entry(paper: Paper, key: str, base_url: str) -> str:
    fields: list[tuple[str, str]] = [("title", latex_escaped(paper.get("title")))]
    authors = paper.get("authors") or []
    if authors:
        fields.append(("author", " and ".join(_bibtex_name(a) for a in authors)))
    published = paper.get("published_at")
    if isinstance(published, datetime):
        fields += [("year", str(published.year)), ("month", published.strftime("%b").lower())]
    if is_arxiv_id(paper["id"]):
        fields += [("eprint", paper["id"]), ("archivePrefix", "arXiv")]
        if paper.get("primary_category"):
            fields.append(("primaryClass", latex_escaped(paper["primary_category"])))
    if paper.get("doi"):
        fields.append(("doi", latex_escaped(paper["doi"])))
    if paper.get("journal_ref"):
        fields.append(("note", latex_escaped(paper["journal_ref"])))
    fields.append(("url", _bibtex_url(paper_url(paper, base_url))))
    body = "".join(
        f"  {name} = {value},\n" if name == "month" else f"  {name} = {{{value}}},\n"
        for name, value in fields
    )
    return f"@misc{{{key},\n{body}}}\n"


def bibtex(papers: Iterable[Paper], base_url: str) -> str:
    """A ``.bib`` file of ``papers``, in their order, with unique keys."""
    papers = list(papers)
    entries = [
        bibtex_entry(paper, key, base_url)
        for paper, key in zip(papers, unique_keys(papers), strict=True)
    ]
    return "\n".join(entries)


def ris_record(paper: Paper, key: str, base_url: str) -> str:
    lines = [("TY", "UNPB"), ("ID", key), ("TI", one_line(paper.get("title")))]
    lines += [("AU", one_line(name)) for name in paper.get("authors") or []]
    published = paper.get("published_at")
    if isinstance(published, datetime):
        lines += [("PY", str(published.year)), ("DA", published.strftime("%Y/%m/%d"))]
    if paper.get("abstract"):
        lines.append(("AB", one_line(paper["abstract"])))
    if is_arxiv_id(paper["id"]):
        lines += [("AN", f"arXiv:{paper['id']}"), ("PB", "arXiv"), ("DB", "arXiv.org")]
    lines += [("KW", c) for c in (paper.get("categories") or "").split()]
    if paper.get("doi"):
        lines.append(("DO", one_line(paper["doi"])))
    if paper.get("journal_ref"):
        lines.append(("N1", one_line(paper["journal_ref"])))
    lines.append(("UR", paper_url(paper, base_url)))
    if pdf := pdf_url(paper):
        lines.append(("L1", pdf))
    lines.append(("ER", ""))
    return "".join(f"{tag}  - {value}\n" for tag, value in lines)


def ris(papers: Iterable[Paper], base_url: str) -> str:
    """An ``.ris`` file of ``papers`` (type UNPB, unpublished work: a preprint)."""
    papers = list(papers)
    return "\n".join(
        ris_record(paper, key, base_url)
        for paper, key in zip(papers, unique_keys(papers), strict=True)
    )


def highwire_tags(paper: Paper, base_url: str) -> list[tuple[str, str]]:
    """``citation_*`` meta tags as arXiv's own pages have them, which Zotero's Embedded
    Metadata translator (and Google Scholar) read: title, each author, date, abstract, PDF."""
    tags = [("citation_title", one_line(paper.get("title")))]
    tags += [("citation_author", one_line(name)) for name in paper.get("authors") or []]
    published = paper.get("published_at")
    if isinstance(published, datetime):
        tags.append(("citation_date", published.strftime("%Y/%m/%d")))
    updated = paper.get("updated_at")
    if isinstance(updated, datetime):
        tags.append(("citation_online_date", updated.strftime("%Y/%m/%d")))
    if pdf := pdf_url(paper):
        tags.append(("citation_pdf_url", pdf))
    if is_arxiv_id(paper["id"]):
        tags.append(("citation_arxiv_id", paper["id"]))
    if paper.get("doi"):
        tags.append(("citation_doi", one_line(paper["doi"])))
    if paper.get("abstract"):
        tags.append(("citation_abstract", one_line(paper["abstract"])))
    tags.append(("citation_public_url", paper_url(paper, base_url)))
    return tags


def coins(paper: Paper, base_url: str) -> str:
    """The ``title`` of a COinS span (OpenURL 1.0, ContextObject in a span): one per card, so
    that a reference manager saves every paper of a list page."""
    pairs = [
        ("ctx_ver", "Z39.88-2004"),
        ("rft_val_fmt", "info:ofi/fmt:kev:mtx:journal"),
        ("rft.genre", "preprint"),
        ("rft.atitle", one_line(paper.get("title"))),
    ]
    authors = (paper.get("authors") or [])[:COINS_AUTHORS]
    pairs += [("rft.au", one_line(name)) for name in authors]
    published = paper.get("published_at")
    if isinstance(published, datetime):
        pairs.append(("rft.date", published.strftime("%Y-%m-%d")))
    if is_arxiv_id(paper["id"]):
        pairs += [("rft.jtitle", "arXiv"), ("rft_id", f"info:arxiv/{paper['id']}")]
    if paper.get("doi"):
        pairs.append(("rft_id", f"info:doi/{one_line(paper['doi'])}"))
    pairs.append(("rft_id", paper_url(paper, base_url)))
    return urlencode(pairs)
