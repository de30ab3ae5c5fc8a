"""Read and parse a file in a child process while the parent writes to the store.

Parsing, text cleaning and row preparation take about as long as the SQLite writes, so on a
machine with two or more cores the reader runs ahead in its own process. The queue between
them is bounded, so memory stays flat however large the file is.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import traceback
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from broadsheet.papers.record import FeedPlacement, Organisation, Paper
from broadsheet.papers.repository import ROW_KEYS, prepare_fresh_row
from broadsheet.sources.base import Parsed

# spawn, not fork: the parent holds database connections and a progress thread
_START_METHOD = "spawn"
CHUNK = 500
DEPTH = 8  # chunks in flight: CHUNK * DEPTH records at most


class ReaderFailed(RuntimeError):
    """The reader process raised; the message carries its traceback."""


def _pack(item: Parsed) -> tuple:
    """A record as plain tuples: far cheaper to pickle than dataclasses."""
    paper = item.paper
    if paper is None:
        return (item.line, item.resume_at, item.error, None)
    row = prepare_fresh_row(paper)
    organisation = paper.organisation
    feed = paper.feed
    packed = (
        paper.id,
        paper.source,
        (organisation.slug, organisation.name, organisation.full_name) if organisation else None,
        (feed.day, feed.source, feed.submitted_by) if feed else None,
        tuple(row.values()),
    )
    return (item.line, item.resume_at, None, packed)


def _unpack(packed: tuple, keys: tuple[str, ...]) -> Parsed:
    line, resume_at, error, fields = packed
    if fields is None:
        return Parsed(line, resume_at, error=error)
    paper_id, source, organisation, feed, values = fields
    paper = Paper(
        id=paper_id,
        title_raw="",
        abstract_raw="",
        source=source,
        organisation=Organisation(*organisation) if organisation else None,
        feed=FeedPlacement(*feed) if feed else None,
        prepared=dict(zip(keys, values, strict=True)),
    )
    return Parsed(line, resume_at, paper=paper)


def _produce(read: Callable[..., Iterator[Parsed]], out: Any) -> None:
    latest = [0]

    def position(value: int) -> None:
        latest[0] = value

    chunk: list[tuple] = []
    try:
        for item in read(position=position):
            chunk.append(_pack(item))
            if len(chunk) >= CHUNK:
                out.put(("items", chunk, latest[0]))
                chunk = []
        out.put(("items", chunk, latest[0]))
        out.put(("done", None, latest[0]))
    except BaseException:
        out.put(("failed", traceback.format_exc(), latest[0]))


def read_in_subprocess(
    read: partial, position: Callable[[int], None] | None = None
) -> Iterator[Parsed]:
    """Yield what ``read(position=...)`` yields, computed in a child process."""
    context = multiprocessing.get_context(_START_METHOD)
    out = context.Queue(maxsize=DEPTH)
    process = context.Process(target=_produce, args=(read, out), daemon=True)
    process.start()
    try:
        while True:
            try:
                kind, payload, where = out.get(timeout=5)
            except queue_module.Empty:
                if not process.is_alive():
                    raise ReaderFailed(
                        f"reader process exited with code {process.exitcode}"
                    ) from None
                continue
            if position is not None:
                position(where)
            if kind == "items":
                for packed in payload:
                    yield _unpack(packed, ROW_KEYS)
            elif kind == "done":
                return
            else:
                raise ReaderFailed(payload)
    finally:
        if process.is_alive():
            process.terminate()
        process.join(timeout=5)
        out.close()
