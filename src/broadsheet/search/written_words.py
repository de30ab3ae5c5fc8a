"""Words as the query writes them, beside the stems the keyword index matches.

The keyword index stores Porter stems, so "normalization" is searched as "normal" and
"weighting" as "weight": papers about surface normals or model weights match as well as those
about the technique. These helpers tell which papers hold the words as written (or plural).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import Connection, select

from broadsheet.db.membership import is_one_of
from broadsheet.db.schema import papers
from broadsheet.search import keyword_index
from broadsheet.search.lexical import has_content_words, query_terms

# A query of at most this many content words names a technique ("pooling", "logit
# normalization"): its keyword candidates holding the words as written come first.
SHORT_QUERY_WORDS = 2
# A keyword score is multiplied by 1 + WRITTEN_BOOST × the share of words held as written.
WRITTEN_BOOST = 1.0


def singular_forms(word: str) -> list[str]:
    """``word`` and, when it may be a plural, the words it may be the plural of."""
    forms = [word]
    if word.endswith("es") and len(word) > 4:
        forms.append(word[:-2])
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        forms.append(word[:-1])
    return forms


def word_patterns(query: str) -> list[re.Pattern[str]]:
    """One pattern per content word of ``query``: the word as written, singular or plural."""
    return [
        re.compile(
            rf"\b(?:{'|'.join(map(re.escape, singular_forms(word)))})(?:s|es)?\b", re.IGNORECASE
        )
        for word in query_terms(query)
    ]


def exact_word_share(patterns: list[re.Pattern[str]], text: str) -> float:
    if not patterns:
        return 0.0
    return sum(1 for pattern in patterns if pattern.search(text)) / len(patterns)


def paper_texts(connection: Connection, seqs: Sequence[int]) -> dict[int, str]:
    """Title and abstract of each paper (only these two columns: ``papers_by_seq`` would join
    organisations too)."""
    rows = connection.execute(
        select(papers.c.seq, papers.c.title, papers.c.abstract).where(
            is_one_of(connection, papers.c.seq, list(seqs))
        )
    )
    return {seq: f"{title or ''} {abstract or ''}" for seq, title, abstract in rows}


def is_short(query: str) -> bool:
    return has_content_words(query) and len(query_terms(query)) <= SHORT_QUERY_WORDS


def favour_written_words(
    connection: Connection, query: str, hits: Sequence[tuple[int, float]]
) -> list[tuple[int, float]]:
    """Keyword ``hits`` of a short ``query`` rescored so that papers holding its words as
    written outrank those matching their stems only; other queries' hits unchanged.

    Long queries are left alone: there the stems' recall pays (SciFact's claims, which never
    have fewer than three content words, are not touched).
    """
    if not hits or not is_short(query):
        return list(hits)
    patterns = word_patterns(query)
    texts = paper_texts(connection, [seq for seq, _ in hits])
    rescored = [
        (seq, score * (1.0 + WRITTEN_BOOST * exact_word_share(patterns, texts.get(seq, ""))))
        for seq, score in hits
    ]
    return sorted(rescored, key=lambda hit: (-hit[1], hit[0]))


def query_index_terms(query: str) -> frozenset[str]:
    """The index terms of ``query``'s content words (none for stop words alone)."""
    if not has_content_words(query):
        return frozenset()
    return frozenset(keyword_index.tokens(" ".join(query_terms(query))))


def holding_every_word(connection: Connection, query: str, seqs: Sequence[int]) -> set[int]:
    """Those of ``seqs`` whose title or abstract holds every content word of ``query``, each
    as the keyword index stems it ("normalization" and "normalized" alike)."""
    wanted = query_index_terms(query)
    if not wanted or not seqs:
        return set()
    texts = paper_texts(connection, seqs)
    held = keyword_index.hold_every_term(list(texts.values()), wanted)
    return {seq for seq, holds in zip(texts, held, strict=True) if holds}
