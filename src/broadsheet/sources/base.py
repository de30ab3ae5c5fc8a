"""What every source yields: a parsed paper or a located error, with where to resume."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from broadsheet.papers.record import Paper


class RecordError(ValueError):
    """A record that cannot be read, located by file, line (or record number) and field."""

    def __init__(self, path: str, line: int, field: str | None, message: str, unit: str = "line"):
        self.path, self.line, self.field, self.message, self.unit = path, line, field, message, unit
        where = f"{path}:{line}" if unit == "line" else f"{path}: {unit} {line}"
        super().__init__(f"{where}: {'field ' + repr(field) + ': ' if field else ''}{message}")


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


def read_json_lines(
    path: Path,
    parse: Callable[[dict[str, Any]], Paper],
    start_offset: int = 0,
    start_line: int = 0,
    position: Callable[[int], None] | None = None,
) -> Iterator[Parsed]:
    """Parse a JSON-lines file from ``start_offset``, one record per non-blank line."""
    name = str(path)
    with open_binary(path) as handle:
        if start_offset:
            handle.seek(start_offset)
        offset, line = start_offset, start_line
        for raw in handle:
            offset += len(raw)
            line += 1
            if position is not None and line % 256 == 0:
                position(offset)
            if raw.isspace():  # a blank line
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                yield Parsed(
                    line, offset, error=RecordError(name, line, None, f"not valid JSON ({exc})")
                )
                continue
            if not isinstance(obj, dict):
                message = f"expected a JSON object, got {type(obj).__name__}"
                yield Parsed(line, offset, error=RecordError(name, line, None, message))
                continue
            try:
                yield Parsed(line, offset, paper=parse(obj))
            except FieldError as exc:
                yield Parsed(line, offset, error=RecordError(name, line, exc.field, exc.message))
        if position is not None:
            position(offset)
