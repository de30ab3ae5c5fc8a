from __future__ import annotations

from pathlib import Path

from broadsheet.sources import beir


def test_reads_documents_under_the_corpus_name(fixtures: Path) -> None:
    path = fixtures / "beir" / "minicorpus" / "corpus.jsonl"
    items = list(beir.read(path))
    papers = [i.paper for i in items if i.paper]
    assert [p.id for p in papers] == ["minicorpus:4983", "minicorpus:5836", "minicorpus:7912"]
    assert papers[0].title_raw.startswith("Microstructural")
    assert papers[2].title_raw == ""
    assert beir.doc_id(papers[0].id) == "4983"
    errors = [str(i.error) for i in items if i.error]
    assert errors == [f"{path}:4: field '_id': missing"]


def test_corpus_name_can_be_given(fixtures: Path) -> None:
    path = fixtures / "beir" / "minicorpus" / "corpus.jsonl"
    first = next(beir.read(path, corpus="scifact"))
    assert first.paper.id == "scifact:4983"
