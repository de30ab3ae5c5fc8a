"""The BEIR evaluation harness: split loading, metrics, and SciFact's quality bars."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, make_url
from typer.testing import CliRunner

from broadsheet.cli import app
from broadsheet.db.copy import copy_store
from broadsheet.search import evaluate
from broadsheet.search.fusion import DENSE_WEIGHT
from broadsheet.search.hybrid import Mode
from broadsheet.sources.base import RecordError
from databases import ON_POSTGRES, drop_database, new_postgres_url

MODEL = "all-MiniLM-L6-v2"


def test_measure_uses_ir_measures_definitions() -> None:
    qrels = {"q1": {"d1": 1}, "q2": {"d9": 1}}
    run = {"q1": {"d1": 2.0, "d2": 1.0}, "q2": {"d3": 2.0, "d9": 1.0}}
    scores = evaluate.measure(qrels, run)
    assert scores["MRR@10"] == pytest.approx((1.0 + 0.5) / 2)
    assert scores["R@100"] == pytest.approx(1.0)
    assert scores["nDCG@10"] == pytest.approx((1.0 + 1 / 1.5849625) / 2, rel=1e-4)


def test_load_split_reports_bad_lines(tmp_path: Path) -> None:
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n2\td2\n")
    (tmp_path / "queries.jsonl").write_text('{"_id": "1", "text": "q"}\n')
    with pytest.raises(RecordError, match=r"test\.tsv:3"):
        evaluate.load_split(tmp_path, "test")


def _scifact_scores(engine: Engine, split: evaluate.BeirSplit) -> dict[Mode, dict[str, float]]:
    candidates = evaluate.collect_candidates(engine, split, MODEL)
    scores = evaluate.evaluate(engine, split, candidates, DENSE_WEIGHT, MODEL)
    print(engine.dialect.name, {str(mode): values for mode, values in scores.items()})
    assert scores[Mode.hybrid]["nDCG@10"] > max(
        scores[Mode.lexical]["nDCG@10"], scores[Mode.dense]["nDCG@10"]
    )
    return scores


def test_scifact_quality_bars(scifact_dir: Path) -> None:
    """Hybrid nDCG@10 ≥ 0.745 (reranked by passages; 0.73 fused only) and lexical ≥ 0.67 on
    SciFact test (embeds 5,183 abstracts and their 44,692 sentences)."""
    split = evaluate.load_split(scifact_dir, "test")
    assert len(split.queries) == 300
    store = evaluate.default_store_path(scifact_dir, MODEL)
    engine, _, indexed = evaluate.prepare_store(scifact_dir, MODEL, store)
    assert indexed.total == 5183
    scores = _scifact_scores(engine, split)
    assert scores[Mode.lexical]["nDCG@10"] >= 0.67
    assert scores["hybrid, fused only"]["nDCG@10"] >= 0.73
    assert scores[Mode.hybrid]["nDCG@10"] >= 0.745


@pytest.mark.skipif(not ON_POSTGRES, reason="measures the PostgreSQL engine")
def test_scifact_quality_bars_on_postgres(scifact_dir: Path) -> None:
    """The same bars on PostgreSQL (BM25 postings, pgvector), on a copy of the SciFact store."""
    split = evaluate.load_split(scifact_dir, "test")
    store = evaluate.default_store_path(scifact_dir, MODEL)
    evaluate.prepare_store(scifact_dir, MODEL, store)[0].dispose()
    url = new_postgres_url()
    try:
        started = time.perf_counter()
        copy_store(evaluate.store_url(store), url)
        print(f"copied the SciFact store in {time.perf_counter() - started:.1f} s")
        engine, _, indexed = evaluate.prepare_store(scifact_dir, MODEL, url)
        assert (indexed.total, indexed.embedded) == (5183, 0)  # every vector came over
        try:
            scores = _scifact_scores(engine, split)
        finally:
            engine.dispose()
        assert scores[Mode.lexical]["nDCG@10"] >= 0.68
        assert scores["hybrid, fused only"]["nDCG@10"] >= 0.73
        assert scores[Mode.hybrid]["nDCG@10"] >= 0.745
    finally:
        drop_database(url)


def _write_beir(directory: Path) -> Path:
    """Three abstracts, two judged queries: a BEIR folder small enough to embed in a test."""
    corpus = [
        ("d1", "Cerebral white matter", "Myelination of white matter in the newborn brain."),
        ("d2", "Myelodysplasia", "Myelodysplastic syndromes are stem cell malignancies."),
        ("d3", "Graph colouring", "Greedy colouring of sparse graphs uses few colours."),
    ]
    (directory / "qrels").mkdir(parents=True)
    (directory / "corpus.jsonl").write_bytes(
        b"\n".join(orjson.dumps({"_id": i, "title": t, "text": a}) for i, t, a in corpus)
    )
    queries = [{"_id": "q1", "text": "newborn brain white matter"}, {"_id": "q2", "text": "MDS"}]
    (directory / "queries.jsonl").write_bytes(b"\n".join(orjson.dumps(q) for q in queries))
    (directory / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n"
    )
    return directory


def test_eval_beir_runs_on_a_database_url(
    cli: CliRunner, database_url: str, tmp_path: Path
) -> None:
    """``--store`` takes this engine's URL: the corpus is imported and embedded there."""
    directory = _write_beir(tmp_path / "mini")
    store = make_url(database_url)
    if store.get_backend_name() != "sqlite" and not store.password:
        store = store.set(password="kept-out-of-output")  # the test server trusts local users
    url = store.render_as_string(hide_password=False)
    result = cli.invoke(app, ["eval", "beir", str(directory), "--store", url])
    assert result.exit_code == 0, result.output
    assert "3 documents, 3 embedded now" in result.output
    for method in ("lexical", "dense", "hybrid"):
        assert method in result.output
    if store.password:
        assert store.password not in result.output
    again = cli.invoke(app, ["eval", "beir", str(directory), "--store", url])
    assert again.exit_code == 0, again.output
    assert "3 documents, 0 embedded now" in again.output
