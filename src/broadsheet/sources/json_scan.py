"""Where the entries of a JSON array start and end, and how deep JSON nests, without parsing.

A streaming parser that builds each entry (ijson's ``items``) keeps a path string for every
open level, so its memory grows with the square of the nesting: a 400 KB array of brackets
nested 200,000 deep took 21 GB. This scan follows only strings and brackets, keeps the bytes
of one entry at a time and passes over an entry nested too deep or longer than allowed without
keeping it, so its memory is bounded by the longest entry it may keep. Each entry's bytes then
go to the parser the JSON-lines readers use (orjson), so arrays and lines read every value the
same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

# Everything up to the next byte that matters, whole strings included, in one match (the
# possessive quantifiers never backtrack). Group 1 is that byte; a quote there is a string the
# buffer cuts off. Inside an entry commas do not matter, so most of it goes in a few matches.
_SKIP = rb'(?:[^"\[\]{},]++|"[^"\\]*+(?:\\[\s\S][^"\\]*+)*+")*+'
_TO_NEXT_ENTRY = re.compile(_SKIP + rb'([\[\]{},"])')
_TO_NEXT_BRACKET = re.compile(_SKIP.replace(b",", b"") + rb'([\[\]{}"])')
# The rest of a string the buffer cuts off, up to the buffer's end (or a backslash just before it).
_STRING_BODY = re.compile(rb'[^"\\]*+(?:\\[\s\S][^"\\]*+)*+')
_QUOTE, _COMMA, _OPEN_ARRAY, _CLOSE_ARRAY = b'",[]'
_OPENING = frozenset(b"[{")
CHUNK = 1 << 20


@dataclass(slots=True)
class Entry:
    index: int  # 1-based
    data: bytes  # empty where the entry was passed over
    problem: str | None = None  # why it was passed over (nested too deep, too long)


class BrokenArray(ValueError):
    """The file stops being a JSON array here: the entries after it cannot be found."""


def too_deep(limit: int) -> str:
    """What is wrong with a record nested more than ``limit`` levels."""
    return f"nested deeper than {limit} levels"


def too_long(limit: int) -> str:
    """What is wrong with a record longer than ``limit`` bytes."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if limit >= size and limit % size == 0:
            return f"record longer than {limit // size} {unit}"
    return f"record longer than {limit} bytes"


def deeper_than(data: bytes, limit: int) -> bool:
    """Whether the JSON text ``data`` nests more than ``limit`` levels (stops at the first)."""
    pos = depth = 0
    while (match := _TO_NEXT_BRACKET.match(data, pos)) and match[1][0] != _QUOTE:
        pos = match.end()
        depth += 1 if match[1][0] in _OPENING else -1
        if depth > limit:
            return True
    return False


def split_array(
    handle: IO[bytes], max_depth: int, chunk_size: int = CHUNK, *, max_bytes: int
) -> Iterator[Entry]:
    """The entries of the JSON array in ``handle``, each as its bytes.

    An entry nested more than ``max_depth`` levels (the entry itself is one), or whose text
    between its separators is longer than ``max_bytes``, is passed over without being kept and
    comes with its ``problem``. Raises ``BrokenArray`` where the text stops being an array; an
    entry that is not valid JSON inside is found all the same and left to its parser to refuse.
    """
    buf = handle.read(chunk_size)
    pos = depth = index = 0
    start = 0  # where the current entry's bytes begin in ``buf`` (inside the array)
    problem: str | None = None  # set once the current entry is no longer kept
    while True:
        match = (_TO_NEXT_BRACKET if depth > 1 else _TO_NEXT_ENTRY).match(buf, pos)
        byte = match[1][0] if match else _QUOTE
        if byte == _QUOTE:
            # the buffer ends before the next byte that matters, or inside a string: read on
            resume = match.start(1) if match else len(buf)
            if depth == 0 and (match or buf[pos:].strip()):
                raise BrokenArray(f"text where an array should be ({_excerpt(buf[pos:])})")
            if depth and problem is None and len(buf) - start > max_bytes:
                problem = too_long(max_bytes)
            if depth and problem is None:  # keep the entry, in reads that grow with it to the cap
                kept, pos, start = buf[start:], resume - start, 0
                size = max(chunk_size, min(len(kept), max_bytes - len(kept)))
            elif match:  # in a string of an entry not kept: a quote stands for what was read of it
                kept, pos = b'"' + buf[_STRING_BODY.match(buf, resume + 1).end() :], 0
                size = chunk_size
            else:
                kept, pos, size = b"", 0, chunk_size
            more = handle.read(size)
            if not more:
                break
            buf = kept + more
            continue
        if depth == 0 and buf[pos : match.start(1)].strip():
            raise BrokenArray(f"text where an array should be ({_excerpt(buf[pos:])})")
        pos = match.end()
        if byte in _OPENING:
            if depth == 0:
                if byte != _OPEN_ARRAY:
                    raise BrokenArray(f"{chr(byte)!r} where an array should be")
                depth, start = 1, pos
            else:
                depth += 1
                if depth > max_depth + 1 and problem is None:
                    problem = too_deep(max_depth)
        elif depth > 1:
            depth -= 1  # a closing bracket (commas are not looked for inside an entry)
        elif depth == 0:
            raise BrokenArray(f"{chr(byte)!r} outside the array")
        else:  # a comma or the closing bracket of the array: the end of an entry
            end = match.start(1)
            if problem is None and end - start > max_bytes:
                problem = too_long(max_bytes)
            data = b"" if problem else buf[start:end].strip()
            # "[]" holds no entry, "[1,]" an empty one
            if byte == _COMMA or index or problem or data:
                index += 1
                yield Entry(index, data, problem)
            if byte == _COMMA:
                start, problem = pos, None
                continue
            if byte != _CLOSE_ARRAY:
                raise BrokenArray("'}' where the array should close")
            _expect_only_whitespace(handle, buf[pos:], chunk_size)
            return
    raise BrokenArray("the file ends inside the array" if depth else "no array in the file")


def _expect_only_whitespace(handle: IO[bytes], rest: bytes, chunk_size: int) -> None:
    while True:
        if rest.strip():
            raise BrokenArray(f"text after the array ({_excerpt(rest.strip())})")
        rest = handle.read(chunk_size)
        if not rest:
            return


def _excerpt(data: bytes) -> str:
    return repr(data[:40].decode("utf-8", "replace"))
