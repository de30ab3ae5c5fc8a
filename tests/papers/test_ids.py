"""arXiv id normalisation: known spellings, rejects, and properties over generated ids."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broadsheet.papers.ids import (
    MAX_VERSION,
    ArxivId,
    InvalidArxivId,
    is_arxiv_id,
    parse_arxiv_id,
    parse_version,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2401.01234", ArxivId("2401.01234")),
        ("2401.01234v2", ArxivId("2401.01234", 2)),
        ("arXiv:2401.01234v3", ArxivId("2401.01234", 3)),
        ("ARXIV:2401.01234", ArxivId("2401.01234")),
        ("https://arxiv.org/abs/2401.01234v2", ArxivId("2401.01234", 2)),
        ("http://arxiv.org/pdf/2401.01234v2.pdf", ArxivId("2401.01234", 2)),
        ("https://arxiv.org/pdf/2401.01234", ArxivId("2401.01234")),
        ("https://www.arxiv.org/abs/2401.01234?context=cs", ArxivId("2401.01234")),
        ("arxiv.org/abs/2401.01234/", ArxivId("2401.01234")),
        ("  0704.0001 ", ArxivId("0704.0001")),
        ("1412.9999v1", ArxivId("1412.9999", 1)),
        ("hep-th/9901001", ArxivId("hep-th/9901001")),
        ("hep-th/9901001v1", ArxivId("hep-th/9901001", 1)),
        ("HEP-TH/9901001", ArxivId("hep-th/9901001")),
        ("math.GT/0309136", ArxivId("math/0309136")),
        ("http://arxiv.org/abs/cond-mat/0102536v1", ArxivId("cond-mat/0102536", 1)),
        ("arXiv:astro-ph/0703001", ArxivId("astro-ph/0703001")),
    ],
)
def test_known_spellings(text: str, expected: ArxivId) -> None:
    assert parse_arxiv_id(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "2401.1234",
        "1501.1234",
        "1412.12345",
        "2413.01234",
        "0703.0001",
        "2401.01234v0",
        "hep-th/990100",
        "hep-th/0704001",
        "hep-th/9107001",
        "12345",
        "2401-01234",
        "https://example.com/abs/2401.01234",
    ],
)
def test_rejects_what_is_not_an_id(text: str) -> None:
    with pytest.raises(InvalidArxivId):
        parse_arxiv_id(text)
    assert not is_arxiv_id(text)


def test_rejects_non_text() -> None:
    with pytest.raises(InvalidArxivId):
        parse_arxiv_id(704.0001)  # type: ignore[arg-type]


new_style = st.builds(
    lambda year, month, number, wide: (
        f"{year:02d}{month:02d}.{number % 100000:05d}"
        if wide
        else f"{year:02d}{month:02d}.{number % 10000:04d}"
    ),
    st.integers(15, 30),
    st.integers(1, 12),
    st.integers(0, 99999),
    st.just(True),
) | st.builds(
    lambda year, month, number: f"{year:02d}{month:02d}.{number:04d}",
    st.integers(8, 14),
    st.integers(1, 12),
    st.integers(0, 9999),
)
old_style = st.builds(
    lambda archive, year, month, number: f"{archive}/{year:02d}{month:02d}{number:03d}",
    st.sampled_from(["hep-th", "math", "cond-mat", "astro-ph", "quant-ph", "cs", "q-bio"]),
    st.sampled_from([92, 95, 99, 0, 3, 6]),
    st.integers(1, 12),
    st.integers(0, 999),
)
versions = st.none() | st.integers(1, 40)
decorations = st.sampled_from(
    ["{}", "arXiv:{}", "https://arxiv.org/abs/{}", "http://arxiv.org/pdf/{}.pdf", " {} "]
)


@given(base=new_style | old_style, version=versions, decoration=decorations)
def test_every_spelling_of_an_id_normalises_to_the_same_id(base, version, decoration) -> None:
    text = base if version is None else f"{base}v{version}"
    parsed = parse_arxiv_id(decoration.format(text))
    assert parsed.id == base
    assert parsed.version == version


@given(base=new_style | old_style, version=versions)
def test_normalising_is_idempotent(base: str, version: int | None) -> None:
    parsed = parse_arxiv_id(base if version is None else f"{base}v{version}")
    assert parse_arxiv_id(str(parsed)) == parsed
    assert parse_arxiv_id(parsed.id).id == parsed.id


@given(st.text(max_size=30))
def test_arbitrary_text_parses_or_raises_invalid(text: str) -> None:
    try:
        parsed = parse_arxiv_id(text)
    except InvalidArxivId:
        return
    assert parse_arxiv_id(parsed.id).id == parsed.id


@pytest.mark.parametrize(
    "text",
    [
        "2401.01234v" + "9" * 20,  # fits Python, not a database column
        "2401.01234v" + "9" * 5000,  # more digits than Python turns into a number
        "hep-th/9901001v10000",
        "2401.01234v0",
        "٢٤٠١.٠١٢٣٤",  # digits of another script
    ],
)
def test_rejects_versions_and_digits_no_paper_has(text: str) -> None:
    with pytest.raises(InvalidArxivId):
        parse_arxiv_id(text)


@given(st.text(alphabet="0123456789v", max_size=30))
def test_parse_version_gives_a_real_version_or_raises_invalid(text: str) -> None:
    try:
        version = parse_version(text)
    except InvalidArxivId:
        return
    assert 1 <= version <= MAX_VERSION
