"""Property-based fuzz of every import format: real-shaped records, then mutated.

Values of the wrong type, numbers too large for any column, odd text, dates past the
calendar, deep nesting, cut-off files and invalid UTF-8 must each end in an error naming the
file, the line (or entry) and, for a bad value, the field; ``--on-error skip`` reads on past
it; an import stopped by it keeps exactly the batches before it; no run is left "running";
and memory stays flat.
"""

from __future__ import annotations

import json
import re
import resource
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from broadsheet.db.engine import make_engine, migrate
from broadsheet.db.schema import import_runs, paper_authors, papers
from broadsheet.ingest.runner import ImportAborted, OnError, import_file
from broadsheet.sources.detect import FORMATS

# one layout per reader: (format, file name)
LAYOUTS = {
    "daily-papers array": ("daily-papers", "papers.json"),
    "daily-papers lines": ("daily-papers", "papers.jsonl"),
    "arxiv snapshot": ("arxiv-snapshot", "snapshot.jsonl"),
    "beir corpus": ("beir", "corpus.jsonl"),
}
EXAMPLES = 100
DEEPEST = 20_000  # enough to take a gigabyte from a reader whose memory grows with depth^2
# what follows the location in every error: a named field, or a record that is not one
ERROR = re.compile(
    r"(field '[^']+': .+"
    r"|not valid JSON .+"
    r"|expected a JSON object, got \w+"
    r"|nested deeper than \d+ levels)",
    re.DOTALL,
)

text = st.text(max_size=30)
odd_text = st.one_of(
    st.text(alphabet=st.characters(max_codepoint=0x9F), max_size=20),  # controls included
    st.sampled_from(["", " ", "\x00", "\ufffe\uffff", "\u202e", "v" + "9" * 25]),
    st.integers(19, 5000).map(lambda n: "9" * n),
    st.sampled_from(["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "9999-12-31"]),
    st.sampled_from(["2401.10241v" + "9" * 20, "0704.0001v0", "hep-th/9901001v99999"]),
    st.text(alphabet=st.characters(categories=("Cs",)), min_size=1, max_size=3),  # lone halves
)
huge_numbers = st.one_of(
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**30, -1]),
    st.integers(),
    st.floats(allow_nan=False),
)


def nested(depth: int) -> str:
    """A stand-in for a list nested ``depth`` deep, put in place when the file is written
    (the standard library's JSON writer, and printing a failing example, would recurse)."""
    return f"<nested {depth}>"


NESTED = re.compile(rb'"<nested (\d+)>"')


def unnest(data: bytes) -> bytes:
    return NESTED.sub(lambda m: b"[" * int(m[1]) + b"]" * int(m[1]), data)


odd_scalars = st.one_of(st.none(), st.booleans(), huge_numbers, odd_text)
odd_values = st.one_of(
    odd_scalars,
    odd_scalars,
    st.recursive(
        odd_scalars,
        lambda children: (
            st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3)
        ),
        max_leaves=6,
    ),
    st.integers(min_value=60, max_value=DEEPEST).map(nested),
)

dates = st.datetimes(datetime(1991, 8, 1), datetime(2030, 12, 31)).map(
    lambda d: d.isoformat() + "Z"
)
title = text.map(lambda t: f"T{t}")  # never blank


def daily_entry(number: int) -> st.SearchStrategy[dict]:
    paper = st.fixed_dictionaries(
        {
            "id": st.just(f"2401.{10000 + number:05d}"),
            "title": title,
            "summary": text,
            "authors": st.lists(st.fixed_dictionaries({"name": text}), max_size=3),
            "publishedAt": dates,
            "upvotes": st.integers(0, 500),
        },
        optional={
            "organization": st.fixed_dictionaries({"name": title, "fullname": text}),
            "githubRepo": text,
            "numComments": st.integers(0, 50),
        },
    )
    return st.fixed_dictionaries(
        {"paper": paper, "title": title, "publishedAt": dates},
        optional={"submittedBy": st.fixed_dictionaries({"user": text})},
    )


def snapshot_record(number: int) -> st.SearchStrategy[dict]:
    version = st.fixed_dictionaries(
        {"version": st.integers(1, 9).map(lambda v: f"v{v}"), "created": dates}
    )
    return st.fixed_dictionaries(
        {
            "id": st.just(f"0704.{number + 1:04d}"),
            "title": title,
            "abstract": text,
            "authors": text,
            "versions": st.lists(version, min_size=1, max_size=3),
        },
        optional={
            "categories": st.sampled_from(["hep-ph", "cs.LG stat.ML"]),
            "comments": text,
            "doi": text,
            "update_date": dates,
            "authors_parsed": st.lists(st.lists(text, min_size=3, max_size=3), max_size=3),
        },
    )


def beir_document(number: int) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries({"_id": st.just(str(number)), "title": title, "text": text})


RECORDS = {"daily-papers": daily_entry, "arxiv-snapshot": snapshot_record, "beir": beir_document}


def paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every place in ``value`` a mutation can change: dict keys and list positions."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from paths(child, (*prefix, i))


@st.composite
def mutated(draw, record: dict) -> Any:
    """``record`` with one value replaced, one key dropped or an unknown key added."""
    where = draw(st.sampled_from(list(paths(record))))
    new = draw(odd_values)
    if not where:
        keep = isinstance(record, dict) and draw(st.booleans())
        return {**record, draw(text): new} if keep else new
    parent = record
    for step in where[:-1]:
        parent = parent[step]
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[where[-1]]
    else:
        parent[where[-1]] = new
    return record


@st.composite
def import_files(draw, fmt: str) -> tuple[list[Any], bytes]:
    """Records (up to two mutations among them) and how the file is damaged, if at all."""
    count = draw(st.integers(1, 6))
    records: list[Any] = [draw(RECORDS[fmt](n)) for n in range(count)]
    for _ in range(draw(st.integers(0, 2))):
        bad = draw(st.integers(0, count - 1))
        records[bad] = draw(mutated(records[bad]))
    return records, draw(st.sampled_from(["none", "none", "truncate", "bad utf-8"]))


def encode(records: list[Any], name: str) -> bytes:
    if name.endswith(".json"):
        return unnest(json.dumps(records).encode())
    lines = (json.dumps(r).encode() + b"\n" for r in records)
    return unnest(b"".join(lines))


def damage(data: bytes, how: str, where: float) -> bytes:
    cut = int(len(data) * where)
    if how == "truncate":
        return data[:cut]
    if how == "bad utf-8":
        return data[:cut] + b"\xff\xc3" + data[cut:]
    return data


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty store, copied for every example (migrating each would be slow)."""
    path = tmp_path_factory.mktemp("template") / "store.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


def fresh_store(template: Path, folder: Path, name: str) -> Engine:
    path = folder / name
    shutil.copy(template, path)
    return make_engine(f"sqlite:///{path}")


def stored_ids(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(select(papers.c.id)).scalars())


def check_whole_papers(engine: Engine) -> None:
    """Each stored paper has all of its author links: no batch was written in part."""
    with engine.connect() as connection:
        rows = connection.execute(select(papers.c.id, papers.c.authors)).all()
        links = dict(
            connection.execute(
                select(paper_authors.c.paper_id, func.count()).group_by(paper_authors.c.paper_id)
            ).all()
        )
    for paper_id, names in rows:
        assert links.get(paper_id, 0) == len(names)


def run_statuses(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(select(import_runs.c.status)).scalars())


def check_located(message: str, path: Path) -> None:
    location = re.match(rf"{re.escape(str(path))}(?::\d+|: entry \d+): ", message)
    assert location, message
    assert ERROR.fullmatch(message[location.end() :]), message


@pytest.fixture(scope="module")
def peak_before() -> int:
    """The process's peak memory (KiB) before the fuzz; it must stay about there."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@pytest.mark.parametrize("layout", LAYOUTS)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_any_record_imports_or_fails_with_its_location(
    template: Path, peak_before: int, layout: str, data: st.DataObject
) -> None:
    fmt, name = LAYOUTS[layout]
    records, how = data.draw(import_files(fmt), label="records, damage")
    where = data.draw(st.floats(0, 1), label="where the damage is")
    batch_size = data.draw(st.integers(1, 4), label="batch size")
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        path = folder / name
        path.write_bytes(damage(encode(records, name), how, where))
        check_skipping(template, folder, path, fmt, batch_size)
        check_stopping(template, folder, path, fmt, batch_size)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert grown_mib < 300


def check_skipping(template: Path, folder: Path, path: Path, fmt: str, batch_size: int) -> None:
    engine = fresh_store(template, folder, "skip.db")
    try:
        summary = import_file(
            engine, path, fmt=fmt, on_error=OnError.skip, batch_size=batch_size, prefetch=False
        )
        for message in summary.error_messages:
            check_located(message, path)
            event(ERROR.search(message)[0].split(":")[0][:20])  # what kind of error, counted
        if not summary.error_messages:
            event("no error")
        assert summary.errors == summary.skipped == len(summary.error_messages)
        counted = summary.added + summary.updated + summary.unchanged + summary.skipped
        assert summary.read == counted
        assert len(stored_ids(engine)) == summary.added
        check_whole_papers(engine)
        assert run_statuses(engine) == ["done"]
    finally:
        engine.dispose()


def check_stopping(template: Path, folder: Path, path: Path, fmt: str, batch_size: int) -> None:
    """Stopped at a bad record, the store holds exactly the whole batches before it."""
    items = list(FORMATS[fmt].read(path))
    first_bad = next((i for i, item in enumerate(items) if item.error is not None), None)
    engine = fresh_store(template, folder, "abort.db")
    try:
        if first_bad is None:
            summary = import_file(engine, path, fmt=fmt, batch_size=batch_size, prefetch=False)
            assert summary.read == len(items)
            assert run_statuses(engine) == ["done"]
            return
        with pytest.raises(ImportAborted) as stopped:
            import_file(engine, path, fmt=fmt, batch_size=batch_size, prefetch=False)
        check_located(str(stopped.value), path)
        written = first_bad // batch_size * batch_size
        assert stopped.value.summary.read == written
        assert stored_ids(engine) == {item.paper.id for item in items[:written]}
        check_whole_papers(engine)
        assert run_statuses(engine) == ["failed"]
    finally:
        engine.dispose()
