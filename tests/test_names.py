"""One folding rule for every name unique in any letter case."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from broadsheet.names import fold


def test_letter_case_and_compatibility_forms_fold_alike() -> None:
    assert fold("Über") == fold("über") == fold("ÜBER")
    assert fold("Статьи") == fold("статьи")
    assert fold("Straße") == fold("STRASSE")
    assert fold("Ⅽ") == fold("c")  # the Roman numeral
    assert fold("ﬁle") == fold("FILE")  # the ligature
    assert fold("論文") == "論文"
    assert fold("Ada") != fold("Adam")


@given(st.text(max_size=40))
def test_folding_is_stable(name: str) -> None:
    assert fold(fold(name)) == fold(name)
