"""Highlights for results: query terms marked in the title, and the abstract's best window.

Words match the way the lexical index matches them (FTS5's ``porter unicode61
remove_diacritics 2``): split on non-word characters, lower-cased, accents folded, Porter
stemmed. Done in Python over the page's rows, so it costs no second full-text query and works
on any database.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from functools import lru_cache

import snowballstemmer

from broadsheet.search.lexical import query_terms

MARK_START, MARK_END = "\x02", "\x03"  # turned into <mark> after escaping
_NO_MARKS = str.maketrans("", "", MARK_START + MARK_END)
SNIPPET_TOKENS = 48
ELLIPSIS = "…"
_TOKEN = re.compile(r"[^\W_]+")
_stemmer = snowballstemmer.stemmer("porter")


@lru_cache(maxsize=262_144)
def index_form(word: str) -> str:
    """``word`` as the index holds it: lower case, accents folded, stemmed."""
    folded = unicodedata.normalize("NFKD", word.lower())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return _stemmer.stemWord(folded)


def query_stems(query: str) -> frozenset[str]:
    return frozenset(index_form(term) for term in query_terms(query))


def _matches(text: str, stems: frozenset[str]) -> list[re.Match[str]]:
    return [m for m in _TOKEN.finditer(text) if index_form(m.group()) in stems]


def _marked(text: str, matches: list[re.Match[str]], start: int, end: int) -> str:
    parts, cursor = [], start
    for match in matches:
        if start <= match.start() and match.end() <= end:
            parts += [text[cursor : match.start()], MARK_START, match.group(), MARK_END]
            cursor = match.end()
    parts.append(text[cursor:end])
    return "".join(parts)


def unmarked(text: str) -> str:
    """``text`` without the mark characters, so that only the marks made here become <mark>."""
    return text.translate(_NO_MARKS)


def highlight(text: str, stems: frozenset[str]) -> str:
    """All of ``text`` with every query word marked."""
    text = unmarked(text)
    return _marked(text, _matches(text, stems), 0, len(text))


def _best_window(hits: list[str | None], size: int) -> int:
    """Start of the ``size``-word window with the most distinct, then most, query words.

    Some best window starts at a query word (or ends the text), so only those are scored.
    """
    positions = [i for i, hit in enumerate(hits) if hit]
    best_start, best = 0, (0, 0)
    for start in sorted({min(p, len(hits) - size) for p in positions}):
        inside = positions[bisect_left(positions, start) : bisect_left(positions, start + size)]
        score = (len({hits[p] for p in inside}), len(inside))
        if score > best:
            best_start, best = start, score
    return best_start


def snippet(text: str, stems: frozenset[str], tokens: int = SNIPPET_TOKENS) -> str:
    """The window of ``tokens`` words holding the most distinct query words, marked."""
    text = unmarked(text)
    words = list(_TOKEN.finditer(text))
    if len(words) <= tokens:
        return highlight(text, stems)
    hits = [form if (form := index_form(w.group())) in stems else None for w in words]
    start = _best_window(hits, tokens) if any(hits) else 0
    window = range(start, start + tokens)
    begin = 0 if start == 0 else words[start].start()
    end = len(text) if window[-1] == len(words) - 1 else words[window[-1]].end()
    body = _marked(text, [words[i] for i in window if hits[i]], begin, end)
    return (ELLIPSIS if begin else "") + body + (ELLIPSIS if end < len(text) else "")
