"""Highlights: words matched the way the index matches them, the best abstract window."""

from __future__ import annotations

from broadsheet.search.highlight import (
    ELLIPSIS,
    MARK_END,
    MARK_START,
    highlight,
    query_stems,
    snippet,
)


def marked(text: str) -> list[str]:
    return [part.split(MARK_END)[0] for part in text.split(MARK_START)[1:]]


def test_stemmed_case_and_accent_insensitive_matches() -> None:
    stems = query_stems("the pooling networks of Schrödinger")
    title = "Pooled Network layers; schrodinger NETWORK pools (pool_ing), not poolside"
    assert marked(highlight(title, stems)) == [
        "Pooled",
        "Network",
        "schrodinger",
        "NETWORK",
        "pools",
        "pool",
    ]
    assert highlight(title, frozenset()) == title  # nothing to mark, text unchanged


def test_snippet_is_the_window_with_most_query_words() -> None:
    filler = " ".join(f"word{i}" for i in range(100))
    text = f"{filler} the transformer attention mechanism explained {filler}"
    found = snippet(text, query_stems("attention transformers"), tokens=10)
    assert found.startswith(ELLIPSIS) and found.endswith(ELLIPSIS)
    assert marked(found) == ["transformer", "attention"]
    assert len(found.replace(MARK_START, "").replace(MARK_END, "").split()) == 10


def test_snippet_without_matches_starts_at_the_beginning_and_short_text_is_whole() -> None:
    text = " ".join(f"w{i}" for i in range(60))
    assert (
        snippet(text, query_stems("absent"), tokens=48)
        == " ".join(f"w{i}" for i in range(48)) + ELLIPSIS
    )
    assert snippet("A short abstract on graphs.", query_stems("graph")) == (
        f"A short abstract on {MARK_START}graphs{MARK_END}."
    )
