"""Spelling correction from the store's own vocabulary ("transfomer" -> "transformer").

A query word is corrected only when the keyword index does not know it: its Porter stem (the
form the ``porter unicode61`` tokenizer indexes) is in no paper. A word in even one paper is
kept: names such as "ReGAL" or "Imagen" are one edit from a common word, and correcting words
held by few papers rewrote 6 of the 753 titles of the daily papers. The proposal is the most
frequent word of the store within a small edit distance (optimal string alignment, so a swap
of two letters is one edit). Proposals are surface words, as written in titles and abstracts,
because a typo often breaks the suffix that stemming removes ("mechansim" is three edits from
the stem "mechan", one from "mechanism").

Numbers, ids, short words and stop words are left alone. The vocabulary is read once per store
content and kept bounded: words of a single paper are left out (they are often typos
themselves), and so is all but the most frequent ``MAX_WORDS``.
"""

from __future__ import annotations

import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from rapidfuzz import process
from rapidfuzz.distance import OSA
from sqlalchemy import Connection, Engine, func, select

from broadsheet.db.schema import papers
from broadsheet.db.version import current_version
from broadsheet.search import keyword_index
from broadsheet.search.lexical import STOP_WORDS

MIN_WORD = 5  # shorter words have too many neighbours one edit away to guess from
LONG_WORD = 8  # from this length, two edits are allowed
MIN_DOCS = 2  # a word must be in this many papers to be proposed
MAX_WORDS = 60_000  # the most frequent words kept (a few MB)
MAX_SCANNED = 20_000  # the newest papers read to learn the words (about a second)
_WORD = re.compile(r"[^\W_]+")  # the query's words, as lexical.py splits them


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Words of the store's titles and abstracts, with how many papers hold each."""

    docs: dict[str, int]
    by_length: dict[int, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, docs: dict[str, int]) -> Vocabulary:
        by_length: dict[int, list[str]] = {}
        for word in docs:
            by_length.setdefault(len(word), []).append(word)
        return cls(docs, by_length)

    def closest(self, word: str) -> tuple[str, int] | None:
        """The most frequent word within the allowed edits of ``word`` (fewest edits first)."""
        if word in self.docs:  # a word of the store, however the stemmers differ on it
            return None
        limit = 2 if len(word) >= LONG_WORD else 1
        best: tuple[int, bool, int, str] | None = None
        for length in range(len(word) - limit, len(word) + limit + 1):
            choices = self.by_length.get(length)
            if not choices:
                continue
            for found, distance, _ in process.extract(
                word, choices, scorer=OSA.distance, score_cutoff=limit, limit=None
            ):
                if distance == 2 and found[0] != word[0]:
                    continue  # "uncultured" is not a typo of "cultured"
                # among equally close words, letters swapped ("casues") beat one left out
                swapped = sorted(found) == sorted(word)
                key = (distance, not swapped, -self.docs[found], found)
                if distance > 0 and (best is None or key < best):
                    best = key
        return None if best is None else (best[-1], best[0])


@dataclass(frozen=True, slots=True)
class Correction:
    query: str  # the query with the proposals in place of the typed words
    words: dict[str, str]  # typed (lower case) -> proposed


def is_correctable(word: str) -> bool:
    """Whether ``word`` may be corrected: long enough, letters only, not a stop word, and not
    an acronym or a name with capitals inside ("ComYMV", "UreH", "tTregs")."""
    return (
        len(word) >= MIN_WORD
        and word.isalpha()
        and word[1:] == word[1:].lower()
        and word.lower() not in STOP_WORDS
    )


def is_proposable(word: str) -> bool:
    """Whether ``word`` (lower case) may be proposed: one letter shorter than a correctable word
    is still one edit away ("baise" -> "base")."""
    return len(word) >= MIN_WORD - 1 and word.isalpha() and word not in STOP_WORDS


def read_vocabulary(connection: Connection) -> Vocabulary:
    """The words of the newest ``MAX_SCANNED`` papers held by at least ``MIN_DOCS`` of them."""
    counts: Counter[str] = Counter()
    rows = connection.execute(
        select(papers.c.title, papers.c.abstract).order_by(papers.c.seq.desc()).limit(MAX_SCANNED)
    )
    for title, abstract in rows:
        text = f"{title or ''} {abstract or ''}".lower()
        counts.update({w for w in _WORD.findall(text) if is_proposable(w)})
    kept = [(w, n) for w, n in counts.most_common(MAX_WORDS) if n >= MIN_DOCS]
    return Vocabulary.of(dict(kept))


class _VocabularyCache:
    """One vocabulary per store, read again only when the papers change.

    The store version moves with every vote and comment; the vocabulary depends on the papers
    alone, so a new version is checked against the papers' count and newest ``seq`` first.
    """

    MAX_STORES = 8

    def __init__(self) -> None:
        self._entries: OrderedDict[str, tuple[int, tuple[int, int], Vocabulary]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, engine: Engine) -> Vocabulary:
        key = str(engine.url)
        with engine.connect() as connection:
            version = current_version(connection)
            with self._lock:
                entry = self._entries.get(key)
            if entry is not None and entry[0] == version:
                return entry[2]
            signature = tuple(
                connection.execute(
                    select(func.count(), func.coalesce(func.max(papers.c.seq), 0))
                ).one()
            )
            if entry is not None and entry[1] == signature:
                vocabulary = entry[2]
            else:
                vocabulary = read_vocabulary(connection)
        with self._lock:
            self._entries[key] = (version, signature, vocabulary)
            self._entries.move_to_end(key)
            while len(self._entries) > self.MAX_STORES:
                self._entries.popitem(last=False)
        return vocabulary

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


vocabularies = _VocabularyCache()


def stem_documents(connection: Connection, words: list[str]) -> dict[str, int]:
    """Papers holding each word's stem, per the keyword index itself."""
    index = keyword_index.for_engine(connection)
    stems = {word: keyword_index.stem(word) for word in words}
    counts = index.document_counts(connection, stems.values())
    return {word: counts[stem] for word, stem in stems.items()}


def propose(unknown: list[str], vocabulary: Vocabulary) -> dict[str, str]:
    """typed -> proposed, for the words that have a close word in the store."""
    proposals = {}
    for word in unknown:
        closest = vocabulary.closest(word)
        if closest is not None:
            proposals[word] = closest[0]
    return proposals


def _in_case_of(typed: str, proposed: str) -> str:
    return proposed[:1].upper() + proposed[1:] if typed[:1].isupper() else proposed


def correct_query(engine: Engine, query: str) -> Correction | None:
    """The query with its unknown words corrected, or None when there is nothing to correct."""
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(query) if is_correctable(w)))
    if not words:
        return None
    with engine.connect() as connection:
        known = stem_documents(connection, words)
    unknown = [word for word, docs in known.items() if docs == 0]
    if not unknown:
        return None
    proposals = propose(unknown, vocabularies.get(engine))
    if not proposals:
        return None

    def replace(match: re.Match[str]) -> str:
        proposed = proposals.get(match[0].lower()) if is_correctable(match[0]) else None
        return match[0] if proposed is None else _in_case_of(match[0], proposed)

    corrected = _WORD.sub(replace, query)
    return Correction(corrected, proposals)
