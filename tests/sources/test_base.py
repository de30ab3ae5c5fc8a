"""Reading records: nesting limits in bounded memory, located errors, errors across processes."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from broadsheet.sources import arxiv_snapshot, beir, daily_papers
from broadsheet.sources.base import MAX_DEPTH, RecordError

GOOD_ENTRY = {
    "paper": {
        "id": "2401.10241",
        "title": "Good",
        "summary": "Fine.",
        "authors": [{"name": "A"}],
        "publishedAt": "2023-11-30T10:40:34Z",
        "upvotes": 1,
    },
    "title": "Good",
    "publishedAt": "2023-12-01T08:00:00Z",
}
GOOD_RECORD = {
    "id": "0704.0001",
    "title": "Good",
    "abstract": "Fine.",
    "versions": [{"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}],
}
GOOD_DOCUMENT = {"_id": "1", "title": "Good", "text": "Fine."}


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


# Imports the deep file in a child whose address space is capped, and prints what it saw.
CHILD = """
import json, resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[3]), int(sys.argv[3])))
from broadsheet.db.engine import make_engine, migrate
from broadsheet.ingest.runner import OnError, import_file
engine = make_engine(sys.argv[1])
migrate(engine)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
summary = import_file(engine, Path(sys.argv[2]), on_error=OnError.skip, prefetch=False)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"messages": summary.error_messages, "added": summary.added,
                  "grew_kib": after - before}))
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
