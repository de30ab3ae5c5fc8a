"""The BEIR evaluation harness: split loading, metrics, and SciFact's quality bars."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadsheet.search import evaluate
from broadsheet.search.fusion import DENSE_WEIGHT
from broadsheet.search.hybrid import Mode
from broadsheet.sources.base import RecordError


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


def test_scifact_quality_bars(scifact_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Hybrid nDCG@10 ≥ 0.73 and lexical ≥ 0.67 on SciFact test (embeds 5,183 abstracts)."""
    split = evaluate.load_split(scifact_dir, "test")
    assert len(split.queries) == 300
    store = evaluate.default_store_path(scifact_dir, "all-MiniLM-L6-v2")
    engine, _, indexed = evaluate.prepare_store(scifact_dir, "all-MiniLM-L6-v2", store)
    assert indexed.total == 5183
    candidates = evaluate.collect_candidates(engine, split, "all-MiniLM-L6-v2")
    scores = evaluate.evaluate(engine, split, candidates, DENSE_WEIGHT)
    print({str(mode): values for mode, values in scores.items()})
    assert scores[Mode.lexical]["nDCG@10"] >= 0.67
    assert scores[Mode.hybrid]["nDCG@10"] >= 0.73
    assert scores[Mode.hybrid]["nDCG@10"] > max(
        scores[Mode.lexical]["nDCG@10"], scores[Mode.dense]["nDCG@10"]
    )
