"""Where the entries of a JSON array start and end, and how deep JSON nests, without parsing.

A streaming parser that builds each entry (ijson's ``items``) keeps a path string for every
open level, so its memory grows with the square of the nesting: a 400 KB array of brackets
nested 200,000 deep took 21 GB. This scan follows only strings and brackets, keeps the bytes
of one entry at a time and passes over an entry nested too deep without keeping it, so its
memory is bounded by the largest entry it keeps. Each entry's bytes then go to the parser the
JSON-lines readers use (orjson), so arrays and lines read every value the same way.
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
_QUOTE, _COMMA, _OPEN_ARRAY, _CLOSE_ARRAY = b'",[]'
_OPENING = frozenset(b"[{")
CHUNK = 1 << 20


@dataclass(slots=True)
class Entry:
    index: int  # 1-based
    data: bytes | None  # None: nested deeper than allowed, and not kept


class BrokenArray(ValueError):
    """The file stops being a JSON array here: the entries after it cannot be found."""


def deeper_than(data: bytes, limit: int) -> bool:
    """Whether the JSON text ``data`` nests more than ``limit`` levels (stops at the first)."""
    pos = depth = 0
    while (match := _TO_NEXT_BRACKET.match(data, pos)) and match[1][0] != _QUOTE:
        pos = match.end()
        depth += 1 if match[1][0] in _OPENING else -1
        if depth > limit:
            return True
    return False


def split_array(handle: IO[bytes], max_depth: int, chunk_size: int = CHUNK) -> Iterator[Entry]:
    """The entries of the JSON array in ``handle``, each as its bytes.

    An entry nested more than ``max_depth`` levels (the entry itself is one) comes with
    ``data=None``. Raises ``BrokenArray`` where the text stops being an array; an entry
    that is not valid JSON inside is found all the same and left to its parser to refuse.
    """
    buf = handle.read(chunk_size)
    pos = depth = index = 0
    start: int | None = None  # where the current entry's bytes begin in ``buf``
    too_deep = False
    while True:
        match = (_TO_NEXT_BRACKET if depth > 1 else _TO_NEXT_ENTRY).match(buf, pos)
        byte = match[1][0] if match else _QUOTE
        if byte == _QUOTE:
            # the buffer ends before the next byte that matters, or inside a string: read on,
            # keeping only the current entry (or the cut-off string), in reads that grow with
            # what is kept
            resume = match.start(1) if match else len(buf)
            keep = start if start is not None and not too_deep else resume
            more = handle.read(max(chunk_size, len(buf) - keep))
            if not more:
                break
            if depth == 0 and buf[pos:resume].strip():
                raise BrokenArray(f"text where an array should be ({_excerpt(buf[pos:])})")
            buf = buf[keep:] + more
            pos = resume - keep
            if start is not None:
                start = 0 if too_deep else start - keep
            continue
        if depth == 0 and buf[pos : match.start(1)].strip():
            raise BrokenArray(f"text where an array should be ({_excerpt(buf[pos:])})")
        pos = match.end()
        if byte in _OPENING:
            if depth == 0:
                if start is not None or byte != _OPEN_ARRAY:
                    raise BrokenArray(f"{chr(byte)!r} where an array should be")
                depth, start = 1, pos
            else:
                depth += 1
                too_deep = too_deep or depth > max_depth + 1
        elif depth > 1:
            depth -= 1  # a closing bracket (commas are not looked for inside an entry)
        elif depth == 0:
            raise BrokenArray(f"{chr(byte)!r} outside the array")
        else:  # a comma or the closing bracket of the array: the end of an entry
            data = None if too_deep else buf[start : match.start(1)].strip()
            if byte == _COMMA or index or data != b"":  # "[]" holds no entry, "[1,]" an empty one
                index += 1
                yield Entry(index, data)
            if byte == _COMMA:
                start, too_deep = pos, False
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
