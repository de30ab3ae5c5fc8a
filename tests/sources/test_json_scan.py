"""Finding the entries of a JSON array without parsing it, in any chunking, at any depth and
length."""

from __future__ import annotations

import io
import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broadsheet.sources.json_scan import (
    BrokenArray,
    deeper_than,
    split_array,
    too_deep,
    too_long,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",)) | st.sampled_from('"\\[]{},')),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


def entries(
    data: bytes, chunk_size: int = 7, max_depth: int = 64, max_bytes: int = 1 << 30
) -> list[bytes | str]:
    """Each entry's bytes, or what is wrong with it where it was passed over."""
    found = split_array(io.BytesIO(data), max_depth, chunk_size, max_bytes=max_bytes)
    return [entry.problem or entry.data for entry in found]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(json_values, max_size=6),
    st.integers(min_value=1, max_value=40),
    st.sampled_from([None, 1, 2]),
)
def test_entries_are_the_values_of_the_array(values: list, chunk_size: int, indent) -> None:
    data = json.dumps(values, indent=indent, ensure_ascii=False).encode()
    found = entries(data, chunk_size)
    assert [orjson.loads(d) for d in found] == orjson.loads(data)


def test_strings_with_brackets_quotes_and_escapes_do_not_confuse_it() -> None:
    data = rb'[ {"a": "]}\"[{,\\"}, "x\"y", [1, {"b": "}"}] ,2]'
    assert entries(data, chunk_size=3) == [
        b'{"a": "]}\\"[{,\\\\"}',
        b'"x\\"y"',
        b'[1, {"b": "}"}]',
        b"2",
    ]


def test_an_entry_nested_too_deep_is_passed_over_unkept() -> None:
    deep = b"[" * 100 + b"]" * 100
    at_the_limit = b'{"b": ' + b"[" * 9 + b"]" * 9 + b"}"  # 10 levels
    data = b'[{"a": 1}, ' + deep + b", " + at_the_limit + b"]"
    assert entries(data, max_depth=10) == [b'{"a": 1}', too_deep(10), at_the_limit]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(json_values, max_size=6),
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=0, max_value=60),
)
def test_entries_longer_than_the_cap_are_passed_over_unkept(
    values: list, chunk_size: int, max_bytes: int
) -> None:
    texts = [json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode() for v in values]
    data = b"[" + b",".join(texts) + b"]"
    expected = [t if len(t) <= max_bytes else too_long(max_bytes) for t in texts]
    assert entries(data, chunk_size, max_bytes=max_bytes) == expected


def test_the_entries_after_one_passed_over_in_a_string_are_found() -> None:
    """Passing over a string cut off by the buffer keeps its escapes and quotes apart."""
    cut = json.dumps("a\\" * 50 + '"],{' * 20)  # escapes, and brackets in the string
    data = ("[[" + cut + "], " + cut + ', "x", [1]]').encode()
    for chunk_size in range(1, 12):
        assert entries(data, chunk_size, max_bytes=20) == [
            too_long(20),
            too_long(20),
            b'"x"',
            b"[1]",
        ]


def test_the_cap_is_named_in_whole_units() -> None:
    assert too_long(64 * 1024**2) == "record longer than 64 MiB"
    assert too_long(1024) == "record longer than 1 KiB"
    assert too_long(1500) == "record longer than 1500 bytes"


@pytest.mark.parametrize(
    ("data", "found", "broken"),
    [
        (b"[]", [], None),
        (b" [ ] \n", [], None),
        (b"[1,]", [b"1", b""], None),
        (b'[{"a": 1}, {"b":', [b'{"a": 1}'], "the file ends inside the array"),
        (b'[1, "open', [b"1"], "the file ends inside the array"),
        (b"[1] [2]", [b"1"], "text after the array"),
        (b"[1] x", [b"1"], "text after the array"),
        (b"[1}", [b"1"], "where the array should close"),
        (b"", [], "no array in the file"),
        (b'{"a": 1}', [], "where an array should be"),
    ],
)
def test_where_the_array_breaks(data: bytes, found: list, broken: str | None) -> None:
    seen = []
    if broken is None:
        seen = entries(data)
    else:
        with pytest.raises(BrokenArray, match=broken):
            for entry in split_array(io.BytesIO(data), 64, 3, max_bytes=1024):
                seen.append(entry.data)
    assert seen == found


def test_a_long_string_across_many_chunks_is_read_in_linear_time() -> None:
    text = "x" * 3_000_000
    data = json.dumps([text, "y"]).encode()
    assert entries(data, chunk_size=4096) == [json.dumps(text).encode(), b'"y"']


@pytest.mark.parametrize(
    ("data", "deeper"),
    [
        (b'{"a": [[1]]}', False),
        (b'{"a": [[[1]]]}', True),
        (b'{"a": "[[[[[[[["}', False),
        (b"[" * 100_000, True),
    ],
)
def test_deeper_than(data: bytes, deeper: bool) -> None:
    assert deeper_than(data, 3) == deeper
