"""The embedder: backends agree (int8 within cosine 0.99 of fp32), exports are made once,
bad names and missing GPUs fail clearly."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import orjson
import pytest

from broadsheet.search import embed
from broadsheet.search.embed import (
    DEFAULT_MODEL,
    MAX_CHARS,
    MAX_TOKENS,
    QUANTIZED_FILE,
    SESSION_BATCH,
    EmbedderUnavailable,
    OnnxQueryEmbedder,
    SentenceTransformerEmbedder,
    _onnx_export_dir,
    load_embedder,
    onnx_query_embedder,
    paper_text,
    quantize_export,
    text_hash,
)

TEXTS = [
    "graph pooling",
    "Loss-based sample reweighting for learning with noisy labels",
    paper_text("Attention is all you need", "The dominant sequence transduction models " * 20),
]


@pytest.fixture(scope="module")
def torch_embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(DEFAULT_MODEL, backend="torch")


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


def test_default_backend_is_int8_onnx_and_points_like_pytorch(torch_embedder):
    int8 = load_embedder(DEFAULT_MODEL)
    assert int8.backend == "onnx-int8" and torch_embedder.backend == "torch"
    a, b = int8.encode(TEXTS), torch_embedder.encode(TEXTS)
    assert a.shape == b.shape == (3, 384) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert _cosines(a, b).min() >= 0.98
    assert np.abs(a - b).max() > 1e-4  # int8 really ran: it is close, not identical


def test_int8_agrees_with_fp32_on_real_abstracts(torch_embedder, daily_papers_file):
    papers = orjson.loads(daily_papers_file.read_bytes())[:120]
    texts = [paper_text(p["paper"]["title"], p["paper"]["summary"]) for p in papers]
    cosines = _cosines(load_embedder(DEFAULT_MODEL).encode(texts), torch_embedder.encode(texts))
    assert cosines.mean() >= 0.99 and cosines.min() >= 0.98, (cosines.mean(), cosines.min())


def test_onnx_fp32_matches_pytorch(torch_embedder):
    onnx = load_embedder(DEFAULT_MODEL, backend="onnx")
    assert onnx.backend == "onnx"
    assert np.abs(onnx.encode(TEXTS) - torch_embedder.encode(TEXTS)).max() < 1e-4


def test_onnx_export_and_int8_model_are_made_once_and_reused():
    from broadsheet.search.embed import _model_location

    folder = _onnx_export_dir(_model_location(DEFAULT_MODEL))
    load_embedder(DEFAULT_MODEL)
    assert (folder / "onnx" / "model.onnx").is_file()
    made = quantize_export(folder)
    assert made == folder / QUANTIZED_FILE and made.stat().st_size < 40e6  # int8: a quarter
    stamp = made.stat().st_mtime_ns
    again = SentenceTransformerEmbedder(DEFAULT_MODEL, backend="onnx-int8")
    assert again.backend == "onnx-int8" and quantize_export(folder).stat().st_mtime_ns == stamp
    assert not [p.name for p in made.parent.iterdir() if "part-" in p.name or "fused" in p.name]


def test_a_model_that_cannot_be_quantized_runs_in_fp32(monkeypatch, torch_embedder):
    def refuse(folder):
        raise RuntimeError("an operator the quantizer does not know")

    monkeypatch.setattr(embed, "quantize_export", refuse)
    fallback = SentenceTransformerEmbedder(DEFAULT_MODEL, backend="onnx-int8")
    assert fallback.backend == "onnx"
    assert np.abs(fallback.encode(TEXTS) - torch_embedder.encode(TEXTS)).max() < 1e-4


def test_a_gpu_that_is_not_there_is_refused_clearly():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(EmbedderUnavailable, match="no CUDA GPU"):
        SentenceTransformerEmbedder(DEFAULT_MODEL, device="cuda")


def test_int8_runs_each_text_alone_so_its_vector_never_depends_on_its_batch(monkeypatch):
    embedder = load_embedder(DEFAULT_MODEL)
    sizes: list[int] = []
    run = embedder._run_session
    monkeypatch.setattr(
        embedder, "_run_session", lambda texts: sizes.append(len(texts)) or run(texts)
    )
    texts = [f"paper number {i} on sparse attention" for i in range(10)]
    vectors = embedder.encode(texts, batch_size=64)
    assert sizes == [SESSION_BATCH] * 10 and SESSION_BATCH == 1
    one_by_one = np.vstack([embedder.encode([t]) for t in texts[::-1]])[::-1]
    assert np.abs(vectors - one_by_one).max() < 1e-6


@pytest.mark.parametrize("backend", ["torch", "onnx-int8"])
def test_encode_keeps_order_though_batches_sort_by_length(backend):
    embedder = load_embedder(DEFAULT_MODEL, backend=backend)
    one_by_one = np.vstack([embedder.encode([t]) for t in TEXTS])
    batched = embedder.encode(TEXTS, batch_size=2)
    assert np.abs(one_by_one - batched).max() < 1e-4


def test_unknown_backend_and_model_are_refused(tmp_path):
    with pytest.raises(ValueError, match="backend"):
        SentenceTransformerEmbedder(DEFAULT_MODEL, backend="tensorflow")
    with pytest.raises(EmbedderUnavailable, match="cannot load"):
        SentenceTransformerEmbedder(str(tmp_path / "no-such-model"), backend="torch")


def test_long_texts_are_cut_before_tokenising_yet_fill_the_window(monkeypatch):
    embedder = load_embedder(DEFAULT_MODEL)
    seen: list[int] = []
    encode_batch = embedder._encode

    def recording(texts, batch_size):
        seen.extend(len(t) for t in texts)
        return encode_batch(texts, batch_size)

    huge = "Sparse attention scales to long documents, with proofs; " * 180_000  # 10 MB
    whole_window = embedder.encode([huge[: MAX_CHARS // 2]])
    monkeypatch.setattr(embedder, "_encode", recording)
    assert (
        np.abs(
            embedder.encode([huge, "short"]) - [whole_window[0], embedder.encode(["short"])[0]]
        ).max()
        < 1e-5
    )
    assert seen and max(seen) == MAX_CHARS
    half = embedder.model.tokenizer(huge[: MAX_CHARS // 2], add_special_tokens=False)
    assert len(half["input_ids"]) > MAX_TOKENS  # half the cut already overfills the window


def test_text_hash_changes_with_the_text():
    assert text_hash("a. b") == text_hash("a. b") != text_hash("a. c")
    assert paper_text("T", "") == "T" and paper_text("", "A") == "A"


@pytest.mark.parametrize("backend", ["onnx-int8", "onnx"])
def test_queries_run_on_the_onnx_export_alone_with_the_same_vectors(backend):
    full = load_embedder(DEFAULT_MODEL, backend=backend)  # makes the export if missing
    lean = onnx_query_embedder(DEFAULT_MODEL, backend, threads=1)
    assert isinstance(lean, OnnxQueryEmbedder) and lean.dim == full.dim == 384
    texts = [*TEXTS, "", "Ünïcödé 東京 — punctuation?!", "word " * 2000]
    assert np.abs(lean.encode(texts) - full.encode(texts)).max() < 1e-5
    assert onnx_query_embedder(DEFAULT_MODEL, "torch", threads=1) is None


def test_a_query_process_never_imports_pytorch(tmp_path):
    """``broadsheet search`` in a fresh process: the export alone, not 6-8 s of imports."""
    load_embedder(DEFAULT_MODEL)  # the export is in the cache
    script = (
        "import sys\n"
        "from broadsheet.search.embed import load_query_embedder\n"
        "vector = load_query_embedder().encode(['graph pooling'])[0]\n"
        "heavy = {'torch', 'transformers', 'sentence_transformers'} & set(sys.modules)\n"
        "print(type(load_query_embedder()).__name__, len(vector), heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["OnnxQueryEmbedder", "384", "set()"]


def test_a_model_not_exported_yet_loads_through_sentence_transformers(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # an empty cache: no export
    assert onnx_query_embedder(DEFAULT_MODEL, "onnx-int8", threads=1) is None


@pytest.mark.slow
def test_the_first_export_and_quantization_log_nothing(tmp_path):
    """A first start (nothing in the cache) makes the export and its int8 model quietly; the
    model loaded from them encodes as usual."""
    script = (
        "import logging\n"
        "logging.basicConfig()\n"
        "from broadsheet.search.embed import load_embedder\n"
        "print(load_embedder().encode(['graph pooling']).shape)\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(1, 384)"
    assert done.stderr.strip() == "", done.stderr
