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
)


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


@given(st.text(alphabet=st.characters(blacklist_characters="\\${}~`"), max_size=200))
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
