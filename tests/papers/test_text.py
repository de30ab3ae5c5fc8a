"""Display text from raw text: line breaks, whitespace, LaTeX debris."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broadsheet.papers.text import (
    _has_markup,
    clean_author_name,
    clean_text,
    collapse_whitespace,
    delatex,
    drop_control_characters,
)

# what the display text never holds: C0/C1 controls but tab and line feed, surrogates, and the
# two non-characters XML cannot hold
FORBIDDEN = {*map(chr, range(0x20)), *map(chr, range(0x7F, 0xA0)), "\ufffe", "\uffff"} - {
    "\t",
    "\n",
}


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (
            "Calculation of prompt diphoton\n  production",
            "Calculation of prompt diphoton production",
        ),
        ("  lots   of\tspace \n", "lots of space"),
        (r"time $\mathcal{O}(n \log n)$", "time O(n log n)"),
        (r"\textbf{bold} and \emph{\textit{nested}}", "bold and nested"),
        (r"50\% of $\alpha$-particles", "50% of α-particles"),
        (r"M\"uller and Erd\H{o}s and Fran\c{c}ois", "Müller and Erdős and François"),
        (r"{\O}stergaard and Pawe{\l}", "Østergaard and Paweł"),
        (r"costs \$5", "costs $5"),
        (r"see \cite{smith2020} for details", "see for details"),
        (r"\href{https://x.org}{our code}", "our code"),
        (r"{BERT} models", "BERT models"),
        (r"$x \leq y \times z$", "x ≤ y × z"),
        ("plain text stays plain", "plain text stays plain"),
    ],
)
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


def test_paragraphs_survive_and_hard_breaks_do_not() -> None:
    raw = "  First paragraph\nwraps here.\n  Second paragraph\nalso wraps.\n"
    assert clean_text(raw) == "First paragraph wraps here.\n\nSecond paragraph also wraps."
    assert clean_text("One.\n\nTwo.") == "One.\n\nTwo."


def test_author_names() -> None:
    assert clean_author_name(r"J. M\"{u}ller, ") == "J. Müller"
    assert clean_author_name("  Ada   Lovelace ") == "Ada Lovelace"


@given(
    st.text(
        alphabet=st.characters(
            blacklist_characters="\\${}~`\ufffe\uffff", blacklist_categories=("Cc", "Cs")
        ),
        max_size=200,
    )
)
def test_text_without_markup_only_loses_extra_whitespace(text: str) -> None:
    assert delatex(text) == text
    assert " ".join(clean_text(text).split()) == " ".join(text.split())


@given(st.text(max_size=200))
def test_cleaning_never_fails_and_is_stable(text: str) -> None:
    once = clean_text(text)
    assert "\n\n\n" not in once
    assert once == once.strip()


@given(st.text(alphabet=st.sampled_from("ab é\n\t\r\x0b\x0c\x1c\x1f\xa0\u2003"), max_size=40))
def test_collapse_whitespace_matches_splitting_on_any_whitespace(text: str) -> None:
    assert collapse_whitespace(text) == " ".join(text.split())


@given(st.text(max_size=60))
def test_markup_check_agrees_with_the_latex_characters(text: str) -> None:
    assert _has_markup(text) == any(c in "\\${}~`" for c in text)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Title\x01\x02\x03 here", "Title here"),
        ("a\x00b", "ab"),
        ("costs \\$5\x00 and $\\alpha$\x00", "costs $5 and α"),
        ("C1\x85\x9f controls\x7f", "C1 controls"),
        ("not\ufffe chars\uffff", "not chars"),
        ("lone \ud800surrogate", "lone surrogate"),
        ("tab\tand\nnewline", "tab and newline"),
        ("Ünïcödé\x01 stays", "Ünïcödé stays"),
    ],
)
def test_display_text_drops_control_characters(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean
    assert clean_author_name(raw) == clean


def test_drop_control_characters_keeps_tab_and_newline() -> None:
    assert drop_control_characters("a\tb\nc\x01\r\x1b[31m") == "a\tb\nc[31m"
    plain = "Plain printable ASCII, as most titles are."
    assert drop_control_characters(plain) is plain


@given(st.text(max_size=200))
def test_display_text_never_holds_a_control_character(text: str) -> None:
    for cleaned in (clean_text(text), clean_author_name(text), drop_control_characters(text)):
        assert not FORBIDDEN & set(cleaned)
        assert not any(0xD800 <= ord(c) <= 0xDFFF for c in cleaned)
        cleaned.encode("utf-8")  # storable as UTF-8


def test_a_dropped_citation_leaves_no_stray_space_or_empty_brackets() -> None:
    raw = r"We compare models like \cite{a,b}, leveraging x. Prior work~\citep{x} shows (\cite{y})."
    assert clean_text(raw) == "We compare models like, leveraging x. Prior work shows."
    assert clean_text(r"As in [\citet{z}] and \ref{fig:1} .") == "As in and."
    assert clean_text("Spaces , and () stay where no citation went") == (
        "Spaces , and () stay where no citation went"
    )
