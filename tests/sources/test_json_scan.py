"""Finding the entries of a JSON array without parsing it, in any chunking, at any depth."""

from __future__ import annotations

import io
import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broadsheet.sources.json_scan import BrokenArray, deeper_than, split_array

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


def entries(data: bytes, chunk_size: int = 7, max_depth: int = 64) -> list[bytes | None]:
    return [e.data for e in split_array(io.BytesIO(data), max_depth, chunk_size)]


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
    assert entries(data, max_depth=10) == [b'{"a": 1}', None, at_the_limit]


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
            for entry in split_array(io.BytesIO(data), 64, 3):
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
