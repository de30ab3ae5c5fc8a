"""What every source yields: a parsed paper or a located error, with where to resume.

Records are read one at a time, in memory bounded by the longest record allowed (a longer one
is passed over without being kept whole), and every way a record can be wrong ends in a
``RecordError`` naming the file, the line (or entry) and, for a bad value, the field: the
importer can skip it and go on.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

import orjson

from broadsheet.papers.record import Paper
from broadsheet.sources.json_scan import BrokenArray, deeper_than, split_array, too_deep, too_long

# Real records nest 4 levels at most (a daily-papers entry holds a paper, its author list and
# each author; an arXiv snapshot record 3, a BEIR document 1); deeper input is made up, and
# is refused before any parser spends memory on it.
MAX_DEPTH = 64
# Real records are a few kilobytes (an arXiv abstract is under 2 KB; a 10 MB one still passes);
# a longer record is made up, and is passed over without being kept whole.
MAX_RECORD_BYTES = 64 * 1024**2
# A line longer than this is read in pieces of this size, each counted against the limit.
LINE_PIECE = 1024**2
_NEWLINE = ord("\n")
# The largest count a store's integer columns hold on every engine (PostgreSQL's integer).
MAX_STORED_INT = 2**31 - 1
# Error messages quote the bad value; this much of it is enough to find it.
MAX_MESSAGE = 300


class RecordError(ValueError):
    """A record that cannot be read, located by file, line (or record number) and field."""

    def __init__(self, path: str, line: int, field: str | None, message: str, unit: str = "line"):
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 1] + "…"
        self.path, self.line, self.field, self.message, self.unit = path, line, field, message, unit
        where = f"{path}:{line}" if unit == "line" else f"{path}: {unit} {line}"
        super().__init__(f"{where}: {'field ' + repr(field) + ': ' if field else ''}{message}")

    def __reduce__(self):  # errors travel from the reader process to the importer
        return RecordError, (self.path, self.line, self.field, self.message, self.unit)


class FieldError(ValueError):
    """Raised by record parsers; the reader adds the file and line."""

    def __init__(self, field: str, message: str):
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


@dataclass(slots=True)
class Parsed:
    line: int  # 1-based line number (JSON lines) or record number (JSON arrays)
    resume_at: int  # byte offset or record index just past this record
    paper: Paper | None = None
    error: RecordError | None = None


def open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def require(obj: dict[str, Any], name: str, prefix: str = "") -> Any:
    """``obj[name]``, which must be present and not blank."""
    value = obj.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise FieldError(prefix + name, "missing" if value is None else "empty")
    return value


def require_str(obj: dict[str, Any], name: str, prefix: str = "") -> str:
    value = require(obj, name, prefix)
    if not isinstance(value, str):
        raise FieldError(prefix + name, f"expected text, got {type(value).__name__}")
    return value


def optional_str(obj: dict[str, Any], name: str, prefix: str = "") -> str | None:
    value = obj.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise FieldError(prefix + name, f"expected text, got {type(value).__name__}")
    return value.strip() or None


def whole_number(obj: dict[str, Any], name: str, prefix: str = "", default: int = 0) -> int:
    """``obj[name]`` (``default`` if absent): a whole number from 0 to what the store holds."""
    value = obj.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_STORED_INT:
        raise FieldError(prefix + name, f"expected a whole number from 0 to 2³¹-1, got {value!r}")
    return value


def _nests_deeper(obj: dict[str, Any] | list, limit: int) -> bool:
    """Whether the parsed ``obj`` nests more than ``limit`` levels (``obj`` itself is one)."""
    levels = [(obj, 1)]
    while levels:
        value, depth = levels.pop()
        for child in value.values() if isinstance(value, dict) else value:
            if isinstance(child, dict | list):
                if depth == limit:
                    return True
                levels.append((child, depth + 1))
    return False


def refused(where: tuple[str, int, str], resume_at: int, message: str) -> Parsed:
    """A record passed over for ``message`` (``where`` as for ``parse_record``)."""
    name, line, unit = where
    return Parsed(line, resume_at, error=RecordError(name, line, None, message, unit))


def parse_record(
    data: bytes,
    parse: Callable[[dict[str, Any]], Paper],
    where: tuple[str, int, str],
    resume_at: int,
) -> Parsed:
    """One record's JSON text as a paper or a located error.

    ``where`` is (file, line or entry number, "line" or "entry").
    """
    name, line, unit = where

    def error(field: str | None, message: str) -> Parsed:
        return Parsed(line, resume_at, error=RecordError(name, line, field, message, unit))

    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        deep = deeper_than(data, MAX_DEPTH)
        return error(None, too_deep(MAX_DEPTH) if deep else f"not valid JSON ({exc})")
    if not isinstance(obj, dict):
        return error(None, f"expected a JSON object, got {type(obj).__name__}")
    # a record with few brackets cannot nest deeply (counting them is far quicker than walking)
    if data.count(b"[") + data.count(b"{") > MAX_DEPTH and _nests_deeper(obj, MAX_DEPTH):
        return error(None, too_deep(MAX_DEPTH))
    try:
        return Parsed(line, resume_at, paper=parse(obj))
    except FieldError as exc:
        return error(exc.field, exc.message)
    except MemoryError:
        raise
    except Exception as exc:  # a value no check foresaw: still located, and skippable
        return error(None, f"could not be read ({type(exc).__name__}: {exc})")


def read_lines(
    handle: IO[bytes], max_bytes: int = MAX_RECORD_BYTES
) -> Iterator[tuple[bytes | None, int]]:
    """Each line of ``handle`` and its length in bytes, in memory bounded by ``max_bytes``.

    A line longer than ``max_bytes`` (not counting its line break) comes as None: it is read
    to its end in pieces, never kept whole.
    """
    piece = min(LINE_PIECE, max_bytes + 1)
    # a line of up to one piece (nearly all of them) comes in one read
    for raw in iter(partial(handle.readline, piece), b""):
        if len(raw) == piece and raw[-1] != _NEWLINE:
            yield _rest_of_line(handle, raw, max_bytes)
        else:
            yield raw, len(raw)


def _rest_of_line(handle: IO[bytes], first: bytes, max_bytes: int) -> tuple[bytes | None, int]:
    """The line that starts with ``first`` (a whole piece), and its length in bytes.

    A line longer than ``max_bytes`` (not counting its line break) comes as None: it is read
    to its end in pieces, and no more than ``max_bytes`` of it is ever kept.
    """
    piece = len(first)
    pieces, kept = [first], piece
    while kept <= max_bytes:  # the newline, if it is next, still fits
        more = handle.readline(min(piece, max_bytes + 1 - kept))
        pieces.append(more)
        kept += len(more)
        if not more or more[-1] == _NEWLINE:
            return b"".join(pieces), kept
    del pieces  # before reading past the rest
    length = kept
    while (more := handle.readline(piece)) and more[-1] != _NEWLINE:
        length += len(more)
    return None, length + len(more)


def read_json_lines(
    path: Path,
    parse: Callable[[dict[str, Any]], Paper],
    start_offset: int = 0,
    start_line: int = 0,
    position: Callable[[int], None] | None = None,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> Iterator[Parsed]:
    """Parse a JSON-lines file from ``start_offset``, one record per non-blank line."""
    name = str(path)
    with open_binary(path) as handle:
        if start_offset:
            handle.seek(start_offset)
        offset, line = start_offset, start_line
        for raw, length in read_lines(handle, max_record_bytes):
            offset += length
            line += 1
            if position is not None and line % 256 == 0:
                position(offset)
            if raw is None:
                yield refused((name, line, "line"), offset, too_long(max_record_bytes))
            elif not raw.isspace():  # not a blank line
                yield parse_record(raw, parse, (name, line, "line"), offset)
        if position is not None:
            position(offset)


def read_json_array(
    path: Path,
    parse: Callable[[dict[str, Any]], Paper],
    start_index: int = 0,
    position: Callable[[int], None] | None = None,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> Iterator[Parsed]:
    """Parse the entries of a JSON array after the first ``start_index`` (resume by entry)."""
    name = str(path)
    with open_binary(path) as handle:
        index = 0
        try:
            for entry in split_array(handle, MAX_DEPTH, max_bytes=max_record_bytes):
                index = entry.index
                if position is not None and index % 64 == 0:
                    position(handle.tell())
                if index <= start_index:
                    continue
                where = (name, index, "entry")
                if entry.problem:
                    yield refused(where, index, entry.problem)
                else:
                    yield parse_record(entry.data, parse, where, index)
        except BrokenArray as exc:
            message = (
                f"not valid JSON after entry {index} ({exc}); nothing past this point was read"
            )
            yield Parsed(
                index + 1, index, error=RecordError(name, index + 1, None, message, "entry")
            )
        if position is not None:
            position(handle.tell())
