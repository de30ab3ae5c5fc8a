"""Papers out: BibTeX and RIS downloads of one paper and of a page of search results.

``/papers/{id}.bib`` is declared before the paper page's ``/papers/{id}`` (whose id may hold
slashes), so this router is included first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from broadsheet.papers.citations import bibtex, ris
from broadsheet.web.auth import current_member
from broadsheet.web.downloads import attachment
from broadsheet.web.links import site_url
from broadsheet.web.queries import load_paper, run_search
from broadsheet.web.search_form import SearchForm, read_search_form
from broadsheet.web.stores import read_engine

router = APIRouter(include_in_schema=False)

Writer = Callable[[Iterable[Mapping[str, Any]], str], str]
FORMATS: dict[str, tuple[Writer, str]] = {
    "bib": (bibtex, "application/x-bibtex; charset=utf-8"),
    "ris": (ris, "application/x-research-info-systems; charset=utf-8"),
}


def citation_download(
    request: Request, papers: list[Mapping[str, Any]], name: str, kind: str
) -> Response:
    """``papers`` as a ``.bib`` or ``.ris`` attachment named after ``name``."""
    write, media_type = FORMATS[kind]
    return Response(
        write(papers, site_url(request)),
        media_type=media_type,
        headers={"Content-Disposition": attachment(name, kind)},
    )


def _paper(request: Request, paper_id: str) -> dict[str, Any]:
    member = current_member(request)
    is_admin = member is not None and member.is_admin
    paper = load_paper(read_engine(request), paper_id, include_hidden=is_admin)
    if paper is None:
        raise HTTPException(404, f"No paper {paper_id!r} here.")
    return paper


@router.get("/papers/{paper_id:path}.bib")
def paper_bibtex(request: Request, paper_id: str) -> Response:
    paper = _paper(request, paper_id)
    return citation_download(request, [paper], paper["id"], "bib")


@router.get("/papers/{paper_id:path}.ris")
def paper_ris(request: Request, paper_id: str) -> Response:
    paper = _paper(request, paper_id)
    return citation_download(request, [paper], paper["id"], "ris")


def _search_page(request: Request, form: SearchForm, more: bool) -> list[dict[str, Any]]:
    """The papers of the search page the same query string shows."""
    if form.problems:
        raise HTTPException(422, "; ".join(form.messages()))
    params = form.params
    if not params.q.strip():
        raise HTTPException(422, "Search for something first: the q field is empty.")
    found = run_search(
        read_engine(request),
        params.q,
        params.filters,
        params.sort,
        params.page,
        model=request.app.state.settings.embedding_model,
        more=more,
    )
    return [hit.paper for hit in found.hits]


# the search page's own parameter: its less close results listed too
More = Annotated[bool, Query(description="List the less close results too")]


@router.get("/search.bib")
def search_bibtex(
    request: Request, form: Annotated[SearchForm, Depends(read_search_form)], more: More = False
) -> Response:
    papers = _search_page(request, form, more)
    return citation_download(request, papers, "broadsheet-search", "bib")


@router.get("/search.ris")
def search_ris(
    request: Request, form: Annotated[SearchForm, Depends(read_search_form)], more: More = False
) -> Response:
    papers = _search_page(request, form, more)
    return citation_download(request, papers, "broadsheet-search", "ris")
