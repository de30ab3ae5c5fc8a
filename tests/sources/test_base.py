"""Reading records: nesting and length limits in bounded memory, located errors, errors across
processes."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import tracemalloc
from functools import partial
from pathlib import Path

import orjson
import pytest

from broadsheet.sources import arxiv_snapshot, beir, daily_papers
from broadsheet.sources.base import (
    MAX_DEPTH,
    MAX_RECORD_BYTES,
    Parsed,
    RecordError,
    read_json_array,
    read_json_lines,
)
from good_records import GOOD_DOCUMENT, GOOD_ENTRY, GOOD_RECORD


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_file(tmp_path: Path, kind: str, depth: int) -> Path:
    """A file whose first record holds a list nested ``depth`` deep; its second is good."""
    deep = nested(depth)
    if kind == "array":
        first = json.dumps({**GOOD_ENTRY, "extra": 0}).encode().replace(b"0}", deep + b"}")
        data = b"[" + first + b",\n" + json.dumps(GOOD_ENTRY).encode() + b"]"
        name = "entries.json"
    else:
        good = {"entries": GOOD_ENTRY, "snapshot": GOOD_RECORD, "beir": GOOD_DOCUMENT}[kind]
        first = json.dumps({**good, "extra": 0}).encode().replace(b"0}", deep + b"}")
        data = first + b"\n" + json.dumps(good).encode() + b"\n"
        name = f"{kind}.jsonl"
    path = tmp_path / kind / name
    path.parent.mkdir()
    path.write_bytes(data)
    return path


READERS = {
    "array": daily_papers.read,
    "entries": daily_papers.read,
    "snapshot": arxiv_snapshot.read,
    "beir": beir.read,
}


@pytest.mark.parametrize("kind", READERS)
def test_nesting_deeper_than_the_limit_is_a_located_error(tmp_path: Path, kind: str) -> None:
    path = deep_file(tmp_path, kind, MAX_DEPTH + 1)
    items = list(READERS[kind](path))
    assert len(items) == 2
    where = f"{path}: entry 1" if kind == "array" else f"{path}:1"
    assert str(items[0].error) == f"{where}: nested deeper than {MAX_DEPTH} levels"
    assert items[1].paper is not None  # the next record is read as usual


@pytest.mark.parametrize("kind", READERS)
def test_nesting_within_the_limit_is_read(tmp_path: Path, kind: str) -> None:
    path = deep_file(tmp_path, kind, MAX_DEPTH - 2)  # inside a record one level deep
    items = list(READERS[kind](path))
    assert [i.error for i in items] == [None, None]


def test_real_records_are_far_from_the_limit(daily_papers_file: Path, scifact_dir: Path) -> None:
    def depth(value) -> int:
        if isinstance(value, dict):
            return 1 + max(map(depth, value.values()), default=0)
        if isinstance(value, list):
            return 1 + max(map(depth, value), default=0)
        return 0

    entries = json.loads(daily_papers_file.read_bytes())
    deepest = max(depth(entry) for entry in entries)
    with (scifact_dir / "corpus.jsonl").open("rb") as handle:
        deepest = max(deepest, *(depth(json.loads(line)) for line in handle))
    assert deepest <= 4 < MAX_DEPTH // 8


# Imports a file in a child whose address space is capped, and prints what it saw. The peak is
# read from /proc, reset after the migration: ru_maxrss also counts the parent's peak at exec.
CHILD = """
import json, re, resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[3]), int(sys.argv[3])))
from broadsheet.db.engine import make_engine, migrate
from broadsheet.ingest.runner import OnError, import_file
def kib(name):
    return int(re.search(name + r":\\s+(\\d+) kB", Path("/proc/self/status").read_text())[1])
engine = make_engine(sys.argv[1])
migrate(engine)
Path("/proc/self/clear_refs").write_text("5")  # the peak from here on
before = kib("VmRSS")
summary = import_file(engine, Path(sys.argv[2]), on_error=OnError.skip, prefetch=False)
print(json.dumps({"messages": summary.error_messages, "added": summary.added,
                  "grew_kib": kib("VmHWM") - before}))
"""


@pytest.mark.parametrize("kind", READERS)
def test_a_file_nested_200000_deep_is_refused_in_bounded_memory(
    tmp_path: Path, database_url: str, kind: str
) -> None:
    """400 KB of brackets once took 21 GB (memory grew with the square of the depth)."""
    path = deep_file(tmp_path, kind, 200_000)
    cap = 3 * 1024**3  # far below what the old reader needed, far above what the import needs
    done = subprocess.run(
        [sys.executable, "-c", CHILD, database_url, str(path), str(cap)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout)
    where = f"{path}: entry 1" if kind == "array" else f"{path}:1"
    assert seen["messages"] == [f"{where}: nested deeper than {MAX_DEPTH} levels"]
    assert seen["added"] == 1
    assert seen["grew_kib"] < 64 * 1024


def test_record_errors_survive_the_trip_to_the_importing_process() -> None:
    error = RecordError("papers.json", 3, "paper.id", "missing", "entry")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.line, copy.field, copy.message, copy.unit) == (
        "papers.json",
        3,
        "paper.id",
        "missing",
        "entry",
    )
    assert str(copy) == str(error) == "papers.json: entry 3: field 'paper.id': missing"


PARSERS = {
    "array": daily_papers.parse_entry,
    "entries": daily_papers.parse_entry,
    "snapshot": arxiv_snapshot.parse_record,
    "beir": partial(beir.parse_document, corpus="beir"),
}
GOOD = {"array": GOOD_ENTRY, "entries": GOOD_ENTRY, "snapshot": GOOD_RECORD, "beir": GOOD_DOCUMENT}
GOOD_ID = {
    "array": "2401.10241",
    "entries": "2401.10241",
    "snapshot": "0704.0001",
    "beir": "beir:1",
}
KIB = 1024


def padded(kind: str, size: int) -> bytes:
    """A good record of ``kind`` as JSON text of exactly ``size`` bytes (an extra field pads it)."""
    bare = len(orjson.dumps({**GOOD[kind], "extra": ""}))
    return orjson.dumps({**GOOD[kind], "extra": "x" * (size - bare)})


def records_file(tmp_path: Path, kind: str, records: list[bytes], end: bytes = b"\n") -> Path:
    """``records`` as a JSON array (kind "array") or one a line, the last followed by ``end``."""
    if kind == "array":
        data, name = b"[" + b",".join(records) + b"]", "entries.json"
    else:
        data, name = b"\n".join(records) + end, f"{kind}.jsonl"
    path = tmp_path / kind / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


def read_capped(kind: str, path: Path, cap: int, resume_after: Parsed | None = None) -> list:
    """What reading ``path`` with records capped at ``cap`` bytes yields, as comparable tuples."""
    parse = PARSERS[kind]
    if kind == "array":
        start = {"start_index": resume_after.resume_at} if resume_after else {}
        items = read_json_array(path, parse, max_record_bytes=cap, **start)
    else:
        start = (
            {"start_offset": resume_after.resume_at, "start_line": resume_after.line}
            if resume_after
            else {}
        )
        items = read_json_lines(path, parse, max_record_bytes=cap, **start)
    return [
        (item.line, item.resume_at, str(item.error) if item.error else item.paper.id)
        for item in items
    ]


@pytest.mark.parametrize("kind", READERS)
def test_a_record_longer_than_the_cap_is_a_located_error(tmp_path: Path, kind: str) -> None:
    cap = KIB
    records = [padded(kind, 3 * cap + 17), padded(kind, cap), padded(kind, cap + 1), b"{}"]
    path = records_file(tmp_path, kind, records)
    seen = read_capped(kind, path, cap)

    def where(n: int) -> str:
        return f"{path}: entry {n}" if kind == "array" else f"{path}:{n}"

    messages = [message for _, _, message in seen]
    assert messages[:3] == [
        f"{where(1)}: record longer than 1 KiB",
        GOOD_ID[kind],
        f"{where(3)}: record longer than 1 KiB",
    ]
    assert messages[3].startswith(f"{where(4)}: field ")  # the record after it is read as usual
    assert [line for line, _, _ in seen] == [1, 2, 3, 4]
    if kind == "array":
        assert [resume_at for _, resume_at, _ in seen] == [1, 2, 3, 4]
    else:  # each resume offset is the end of its line
        ends = [sum(len(r) + 1 for r in records[: n + 1]) for n in range(len(records))]
        assert [resume_at for _, resume_at, _ in seen] == ends
    for n in range(3):  # resuming after any record reads the rest the same way
        after = Parsed(seen[n][0], seen[n][1])
        assert read_capped(kind, path, cap, resume_after=after) == seen[n + 1 :]


@pytest.mark.parametrize("kind", READERS)
@pytest.mark.parametrize("end", [b"\n", b""])
def test_the_cap_is_on_the_record_not_its_line_break(tmp_path: Path, kind: str, end: bytes) -> None:
    """A record of exactly the cap is read, one byte more is not, with or without a last newline."""
    cap = KIB
    for size, refused in ((cap - 1, False), (cap, False), (cap + 1, True), (cap + 2, True)):
        path = records_file(tmp_path, kind, [padded(kind, size)], end)
        (seen,) = read_capped(kind, path, cap)
        assert seen[2].endswith("record longer than 1 KiB") == refused, size
        if kind != "array":
            assert seen[1] == size + len(end)


@pytest.mark.parametrize("kind", READERS)
@pytest.mark.parametrize("filler", ["one string", "many values"])
def test_a_long_record_is_passed_over_in_memory_bounded_by_the_cap(
    tmp_path: Path, kind: str, filler: str
) -> None:
    size = 24 * 1024**2
    if filler == "one string":
        long = padded(kind, size)
    else:
        long = orjson.dumps({**GOOD[kind], "extra": ['a,[]{}\\"b'] * (size // 14)})
    path = records_file(tmp_path, kind, [long, padded(kind, 200)])
    del long
    tracemalloc.start()
    try:
        seen = read_capped(kind, path, KIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen[0][2].endswith("record longer than 1 KiB")
    assert seen[1][2] == GOOD_ID[kind]  # the next record is read
    assert peak < 4 * 1024**2  # a few read buffers, not the 24 MB record


@pytest.mark.parametrize("kind", READERS)
def test_a_10_mb_abstract_is_far_under_the_cap(tmp_path: Path, kind: str) -> None:
    huge = "Sparse attention scales." * 400_000
    good = GOOD[kind]
    if kind in ("array", "entries"):
        record = {**good, "paper": {**good["paper"], "summary": huge}}
    else:
        record = {**good, ("abstract" if kind == "snapshot" else "text"): huge}
    path = records_file(tmp_path, kind, [orjson.dumps(record), orjson.dumps(good)])
    items = list(READERS[kind](path))
    assert [item.error for item in items] == [None, None]
    assert items[0].paper.abstract_raw == huge
    assert len(huge) * 6 < MAX_RECORD_BYTES


def test_a_line_far_longer_than_the_cap_is_refused_in_bounded_memory(
    tmp_path: Path, database_url: str
) -> None:
    """A line was read whole: a record of gigabytes on one line took gigabytes of memory."""
    path = tmp_path / "snapshot.jsonl"
    size = 3 * MAX_RECORD_BYTES
    with path.open("wb") as handle:
        handle.write(orjson.dumps({**GOOD_RECORD, "id": "0704.0002"})[:-1] + b', "extra": "')
        handle.write(b"x" * size)
        handle.write(b'"}\n' + orjson.dumps(GOOD_RECORD) + b"\n")
    address_space = 3 * 1024**3  # room for the import; the old reader could still fit in it
    done = subprocess.run(
        [sys.executable, "-c", CHILD, database_url, str(path), str(address_space)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout)
    assert seen["messages"] == [f"{path}:1: record longer than 64 MiB"]
    assert seen["added"] == 1  # the import went on to the next line
    assert seen["grew_kib"] * 1024 < MAX_RECORD_BYTES * 3 // 2  # the cap's worth, not the line's
