"""Read and parse a file in a child process while the parent writes to the store.

Parsing, text cleaning and row preparation take about as long as the SQLite writes, so on a
machine with two or more cores the reader runs ahead in its own process. The queue between
them is bounded, so memory stays flat however large the file is.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import threading
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
DEPTH = 24  # chunks in flight, CHUNK * DEPTH records: more than a batch, so reading goes on
# while the importer writes one


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


def _put(out: Any, message: tuple) -> None:
    """Queue ``message``; exit if the importing process died (killed imports leave no orphan)."""
    while True:
        try:
            out.put(message, timeout=1)
            return
        except queue_module.Full:
            parent = multiprocessing.parent_process()
            if parent is not None and not parent.is_alive():
                os._exit(1)


def _produce(read: Callable[..., Iterator[Parsed]], out: Any) -> None:
    latest = [0]

    def position(value: int) -> None:
        latest[0] = value

    chunk: list[tuple] = []
    try:
        for item in read(position=position):
            chunk.append(_pack(item))
            if len(chunk) >= CHUNK:
                _put(out, ("items", chunk, latest[0]))
                chunk = []
        _put(out, ("items", chunk, latest[0]))
        _put(out, ("done", None, latest[0]))
    except BaseException:
        _put(out, ("failed", traceback.format_exc(), latest[0]))


def _receive(out: Any, process: Any, ready: queue_module.Queue, stop: threading.Event) -> None:
    """Move chunks from the reader process to ``ready``, unpacked.

    Runs in a thread of the importing process, so that unpickling overlaps the importer's
    database writes (SQLite releases the GIL while it works).
    """

    def hand_over(message: tuple) -> None:
        while not stop.is_set():
            try:
                ready.put(message, timeout=1)
                return
            except queue_module.Full:
                continue

    try:
        while not stop.is_set():
            try:
                kind, payload, where = out.get(timeout=1)
            except queue_module.Empty:
                if not process.is_alive():
                    exited = f"reader process exited with code {process.exitcode}"
                    hand_over(("failed", exited, None))
                    return
                continue
            if kind == "items":
                payload = [_unpack(packed, ROW_KEYS) for packed in payload]
            hand_over((kind, payload, where))
            if kind != "items":
                return
    except BaseException:
        hand_over(("failed", traceback.format_exc(), None))


def read_in_subprocess(
    read: partial, position: Callable[[int], None] | None = None
) -> Iterator[Parsed]:
    """Yield what ``read(position=...)`` yields, computed in a child process."""
    context = multiprocessing.get_context(_START_METHOD)
    out = context.Queue(maxsize=DEPTH)
    process = context.Process(target=_produce, args=(read, out), daemon=True)
    process.start()
    ready: queue_module.Queue = queue_module.Queue(maxsize=DEPTH)  # a batch, unpacked ahead
    stop = threading.Event()
    receiver = threading.Thread(target=_receive, args=(out, process, ready, stop), daemon=True)
    receiver.start()
    try:
        while True:
            kind, payload, where = ready.get()
            if position is not None and where is not None:
                position(where)
            if kind == "items":
                yield from payload
            elif kind == "done":
                return
            else:
                raise ReaderFailed(payload)
    finally:
        stop.set()
        receiver.join(timeout=5)
        if process.is_alive():
            process.terminate()
        process.join(timeout=5)
        out.close()
