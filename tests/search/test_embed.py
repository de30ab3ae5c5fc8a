"""The embedder: backends agree, the ONNX export is cached, bad names fail clearly."""

from __future__ import annotations

import numpy as np
import pytest

from broadsheet.search.embed import (
    DEFAULT_MODEL,
    MAX_CHARS,
    MAX_TOKENS,
    EmbedderUnavailable,
    SentenceTransformerEmbedder,
    _onnx_export_dir,
    load_embedder,
    paper_text,
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


def test_default_backend_is_onnx_and_matches_pytorch(torch_embedder):
    onnx = load_embedder(DEFAULT_MODEL)
    assert onnx.backend == "onnx" and torch_embedder.backend == "torch"
    a, b = onnx.encode(TEXTS), torch_embedder.encode(TEXTS)
    assert a.shape == b.shape == (3, 384) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.abs(a - b).max() < 1e-4  # stored vectors stay valid across backends


def test_onnx_export_is_cached_and_reused():
    from broadsheet.search.embed import _model_location

    folder = _onnx_export_dir(_model_location(DEFAULT_MODEL))
    load_embedder(DEFAULT_MODEL)
    assert (folder / "onnx" / "model.onnx").is_file()
    again = SentenceTransformerEmbedder(DEFAULT_MODEL, backend="onnx")
    assert again.backend == "onnx"


def test_encode_keeps_order_though_batches_sort_by_length(torch_embedder):
    one_by_one = np.vstack([torch_embedder.encode([t]) for t in TEXTS])
    batched = torch_embedder.encode(TEXTS, batch_size=2)
    assert np.abs(one_by_one - batched).max() < 1e-4


def test_unknown_backend_and_model_are_refused(tmp_path):
    with pytest.raises(ValueError, match="backend"):
        SentenceTransformerEmbedder(DEFAULT_MODEL, backend="tensorflow")
    with pytest.raises(EmbedderUnavailable, match="cannot load"):
        SentenceTransformerEmbedder(str(tmp_path / "no-such-model"), backend="torch")


def test_long_texts_are_cut_before_tokenising_yet_fill_the_window(monkeypatch):
    embedder = load_embedder(DEFAULT_MODEL)
    seen: list[int] = []
    model_encode = embedder.model.encode

    def recording(texts, **options):
        seen.extend(len(t) for t in texts)
        return model_encode(texts, **options)

    huge = "Sparse attention scales to long documents, with proofs; " * 180_000  # 10 MB
    whole_window = embedder.encode([huge[: MAX_CHARS // 2]])
    monkeypatch.setattr(embedder.model, "encode", recording)
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
