"""Embedding speed on this machine: plain sentence-transformers (PyTorch, fp32) against
Broadsheet's embedder on ONNX Runtime, in fp32 and with int8 weights, on the same real
abstracts in one run.

The abstracts are the shared daily papers' (title and abstract, as ``broadsheet index`` embeds
them). Each variant encodes all of them once per round, rounds alternate the variants, and the
median round counts (this machine's speed drifts). The baseline is sentence-transformers as a
user would call it: ``model.encode(texts)`` with its default batch of 32. Agreement is the
cosine between each variant's vector and the baseline's for the same abstract.

    python bench/embed.py                     # 300 abstracts, 3 rounds
    python bench/embed.py --abstracts 753 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from statistics import median

import numpy as np
import orjson

from broadsheet.search.embed import (
    DEFAULT_MODEL,
    SentenceTransformerEmbedder,
    _model_location,
    paper_text,
)

DAILY = Path(__file__).resolve().parents[2] / "shared" / "data" / "hf-daily-papers"


def abstracts(count: int) -> list[str]:
    path = DAILY / "daily_papers.json"
    if not path.exists():
        raise SystemExit(f"shared data not found at {path}")
    entries = orjson.loads(path.read_bytes())
    return [paper_text(e["paper"]["title"], e["paper"]["summary"]) for e in entries[:count]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--abstracts", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from sentence_transformers import SentenceTransformer

    texts = abstracts(args.abstracts)
    plain = SentenceTransformer(_model_location(DEFAULT_MODEL), device="cpu")
    plain.max_seq_length = 256
    variants = {
        "sentence-transformers, PyTorch fp32, batch 32": lambda: plain.encode(
            texts, normalize_embeddings=True
        ),
    }
    for backend, label in (
        ("onnx", "Broadsheet, ONNX fp32"),
        ("onnx-int8", "Broadsheet, ONNX int8"),
    ):
        embedder = SentenceTransformerEmbedder(DEFAULT_MODEL, backend=backend)
        assert embedder.backend == backend, f"{backend} did not load ({embedder.backend})"
        embedder.encode(texts[:8])
        variants[label] = lambda embedder=embedder: embedder.encode(texts)
    plain.encode(texts[:8])  # warm up: first calls allocate
    rates: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(args.rounds):
        for name, run in variants.items():
            wall, used = time.perf_counter(), time.process_time()
            vectors[name] = run()
            rates[name].append(len(texts) / (time.perf_counter() - wall))
            cpu[name].append((time.process_time() - used) / len(texts))
    baseline_name = next(iter(variants))
    baseline = median(rates[baseline_name])
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{len(texts)} daily-papers abstracts (max 256 tokens), {args.rounds} rounds"
    )
    header = f"{'abstracts/s':>12} {'speed-up':>9} {'CPU ms/abs':>11} {'cosine mean / min':>18}"
    print(f"{'embedder':<48} {header}")
    for name in variants:
        cosines = (vectors[name] * vectors[baseline_name]).sum(axis=1)
        print(
            f"{name:<48} {median(rates[name]):>12.1f} {median(rates[name]) / baseline:>8.2f}x"
            f" {median(cpu[name]) * 1000:>11.1f} {cosines.mean():>9.4f} / {cosines.min():.4f}"
        )
        print(f"{'':<48} rounds: {', '.join(f'{r:.1f}' for r in rates[name])}")


if __name__ == "__main__":
    sys.exit(main())
