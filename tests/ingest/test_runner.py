"""Whole imports: idempotence, --on-error, prefetch, resume after a kill, the shared data."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from sqlalchemy import Engine, func, select

from broadsheet.db.schema import feed_entries, import_runs, papers
from broadsheet.db.work_locks import holding_part
from broadsheet.ingest.runner import (
    IMPORT_JOB,
    ImportAborted,
    ImportBusy,
    OnError,
    file_part,
    import_file,
)
from broadsheet.papers.repository import get_paper
from databases import ON_POSTGRES
from good_records import GOOD_DOCUMENT, GOOD_ENTRY, GOOD_RECORD
from helpers import run_env
from keyword_checks import assert_keyword_index_whole
from snapshot_gen import write_snapshot


def paper_count(store: Engine) -> int:
    with store.connect() as connection:
        return connection.execute(select(func.count()).select_from(papers)).scalar_one()


def test_import_twice_changes_nothing(store: Engine, fixtures: Path) -> None:
    path = fixtures / "arxiv_snapshot" / "good.jsonl"
    first = import_file(store, path)
    assert (first.read, first.added, first.updated, first.errors) == (3, 3, 0, 0)
    second = import_file(store, path)
    assert (second.read, second.added, second.updated, second.unchanged) == (3, 0, 0, 3)
    assert paper_count(store) == 3


def test_newer_version_in_a_later_file_updates(store: Engine, fixtures: Path) -> None:
    import_file(store, fixtures / "arxiv_snapshot" / "good.jsonl")
    summary = import_file(store, fixtures / "arxiv_snapshot" / "newer_version.jsonl")
    assert summary.updated == 1
    with store.connect() as connection:
        paper = get_paper(connection, "2401.01234")
    assert (paper["title"], paper["version"]) == ("Modern paper, revised", 2)


def test_on_error_skip_stores_the_good_records(store: Engine, fixtures: Path) -> None:
    summary = import_file(
        store, fixtures / "arxiv_snapshot" / "malformed.jsonl", on_error=OnError.skip
    )
    assert (summary.read, summary.added, summary.errors, summary.skipped) == (7, 2, 5, 5)
    assert any(":3: field 'id'" in message for message in summary.error_messages)
    assert paper_count(store) == 2


def test_on_error_abort_stops_at_the_bad_record(store: Engine, fixtures: Path) -> None:
    path = fixtures / "arxiv_snapshot" / "malformed.jsonl"
    with pytest.raises(ImportAborted) as caught:
        import_file(store, path, on_error=OnError.abort, batch_size=1)
    assert caught.value.error.line == 2
    assert str(caught.value).startswith(f"{path}:2: not valid JSON")
    assert paper_count(store) == 1  # the batch before the bad line is stored, nothing after


def test_prefetch_gives_the_same_store(tmp_path: Path, fixtures: Path) -> None:
    from broadsheet.db.engine import make_engine, migrate

    snapshot = write_snapshot(tmp_path / "snap.jsonl", 1500)
    results = []
    for prefetch in (False, True):
        engine = make_engine(f"sqlite:///{tmp_path / f'p{prefetch}.db'}")
        migrate(engine)
        summary = import_file(engine, snapshot, prefetch=prefetch, batch_size=400)
        with engine.connect() as connection:
            rows = connection.execute(
                select(
                    papers.c.id,
                    papers.c.title,
                    papers.c.abstract,
                    papers.c.authors,
                    papers.c.record_hash,
                ).order_by(papers.c.id)
            ).all()
        results.append((summary.added, rows))
        engine.dispose()
    assert results[0][0] == results[1][0] == 1500
    assert results[0][1] == results[1][1]
    for prefetch in (False, True):  # written without lookups, yet every reference holds
        engine = make_engine(f"sqlite:///{tmp_path / f'p{prefetch}.db'}")
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        engine.dispose()


def test_killed_import_resumes_without_duplicates(
    tmp_path: Path, database_url: str, store: Engine
) -> None:
    snapshot = write_snapshot(tmp_path / "snap.jsonl", 30000)
    command = [
        sys.executable,
        "-m",
        "broadsheet.cli",
        "import",
        str(snapshot),
        "--batch-size",
        "1000",
    ]
    child = subprocess.Popen(
        command, env=run_env(database_url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    checkpoint = 0
    while time.monotonic() < deadline and child.poll() is None:
        with store.connect() as connection:
            checkpoint = (
                connection.execute(select(func.max(import_runs.c.resume_line))).scalar() or 0
            )
        if checkpoint >= 3000:
            break
        time.sleep(0.05)
    assert child.poll() is None, "the import finished before it could be interrupted"
    helpers = psutil.Process(child.pid).children(recursive=True)
    assert helpers, "a file this large is read in a separate process"
    child.send_signal(signal.SIGKILL)
    child.wait()
    _, still_running = psutil.wait_procs(helpers, timeout=20)
    assert not still_running, "the reader process outlived the killed import"
    stored_before = paper_count(store)
    assert 3000 <= stored_before < 30000

    done = subprocess.run(
        command, env=run_env(database_url), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "resumed after record" in done.stderr
    assert "closed as failed" in done.stderr  # the killed run, left "running"
    assert paper_count(store) == 30000
    with store.connect() as connection:
        killed, run = (
            connection.execute(select(import_runs).order_by(import_runs.c.id)).mappings().all()
        )
    assert killed["status"] == "failed" and killed["finished_at"] is not None
    assert run["status"] == "done"
    assert run["resume_line"] == 30000
    assert run["read"] == 30000  # every line counted once across both runs
    assert run["added"] == 30000


def test_changed_file_is_read_from_the_start(store: Engine, tmp_path: Path, fixtures: Path) -> None:
    path = tmp_path / "snap.jsonl"
    path.write_bytes((fixtures / "arxiv_snapshot" / "malformed.jsonl").read_bytes())
    with pytest.raises(ImportAborted):
        import_file(store, path, batch_size=1)
    good = (fixtures / "arxiv_snapshot" / "good.jsonl").read_bytes()
    path.write_bytes(good)
    summary = import_file(store, path)
    assert summary.resumed_from_line is None
    assert summary.read == 3


def test_shared_daily_papers_import_completely(store: Engine, daily_papers_file: Path) -> None:
    first = import_file(store, daily_papers_file)
    assert (first.read, first.added, first.errors) == (753, 753, 0)
    second = import_file(store, daily_papers_file)
    assert (second.added, second.updated, second.unchanged) == (0, 0, 753)
    with store.connect() as connection:
        assert connection.execute(select(func.count()).select_from(papers)).scalar_one() == 753
        upvotes = connection.execute(
            select(func.sum(papers.c.upvotes), func.min(papers.c.upvotes))
        ).one()
        days = connection.execute(
            select(func.count(func.distinct(feed_entries.c.day)))
        ).scalar_one()
        zero_bubble = get_paper(connection, "2401.10241")
    assert upvotes[1] >= 1  # every entry has upvotes
    assert upvotes[0] > 753
    assert days == 95
    assert zero_bubble["title"] == "Zero Bubble Pipeline Parallelism"
    assert zero_bubble["upvotes"] == 19
    assert len(zero_bubble["authors"]) == 4


def test_concurrent_imports_of_the_same_papers_both_succeed(tmp_path: Path, store: Engine) -> None:
    """Each batch takes the write lock before it looks for stored papers, so another import
    cannot add one of them in between (which would fail the batch on the unique id)."""
    from concurrent.futures import ThreadPoolExecutor

    from broadsheet.db.engine import make_engine

    snapshot = write_snapshot(tmp_path / "snap.jsonl", 2000)
    copy = tmp_path / "copy.jsonl"  # another file: its own import run, same papers
    copy.write_bytes(snapshot.read_bytes())
    engines = [make_engine(str(store.url)) for _ in range(2)]
    with ThreadPoolExecutor(2) as pool:
        runs = [
            pool.submit(import_file, engine, path, batch_size=100, prefetch=False)
            for engine, path in zip(engines, (snapshot, copy), strict=True)
        ]
        summaries = [run.result(timeout=300) for run in runs]
    for engine in engines:
        engine.dispose()
    assert sum(s.added for s in summaries) == 2000
    assert all(s.added + s.unchanged + s.updated == 2000 for s in summaries)
    assert paper_count(store) == 2000
    with store.connect() as connection:
        assert_keyword_index_whole(connection)


OVERFLOWING_DATE = "9999-12-31T23:59:59-23:59"


def entry_with(**paper) -> dict:
    return {**GOOD_ENTRY, "paper": {**GOOD_ENTRY["paper"], **paper}}


# (file name, bad record, the good record after it, the field the error names)
BAD_VALUES = {
    "long version": ("e.jsonl", entry_with(id="2401.10241v" + "9" * 20), GOOD_ENTRY, "paper.id"),
    "huge version": ("e.jsonl", entry_with(id="2401.10241v" + "9" * 5000), GOOD_ENTRY, "paper.id"),
    "tz overflow": (
        "e.jsonl",
        entry_with(publishedAt=OVERFLOWING_DATE),
        GOOD_ENTRY,
        "paper.publishedAt",
    ),
    "feed day overflow": (
        "e.jsonl",
        {**GOOD_ENTRY, "publishedAt": OVERFLOWING_DATE},
        GOOD_ENTRY,
        "publishedAt",
    ),
    "feed day 9999": (
        "e.jsonl",
        {**GOOD_ENTRY, "publishedAt": "9999-12-31"},
        GOOD_ENTRY,
        "publishedAt",
    ),
    "upvotes 2^64-1": ("e.jsonl", entry_with(upvotes=2**64 - 1), GOOD_ENTRY, "paper.upvotes"),
    "upvotes 2^63": ("e.jsonl", entry_with(upvotes=2**63), GOOD_ENTRY, "paper.upvotes"),
    "upvotes 2^31": ("e.jsonl", entry_with(upvotes=2**31), GOOD_ENTRY, "paper.upvotes"),
    "upvotes 2^64": ("e.jsonl", entry_with(upvotes=2**64), GOOD_ENTRY, "paper.upvotes"),
    "array upvotes 2^63": ("e.json", entry_with(upvotes=2**63), GOOD_ENTRY, "paper.upvotes"),
    "submitter not text": (
        "e.jsonl",
        {**GOOD_ENTRY, "submittedBy": {"user": {"name": "x"}}},
        GOOD_ENTRY,
        "submittedBy.user",
    ),
    "snapshot long version": (
        "s.jsonl",
        {**GOOD_RECORD, "versions": [{"version": "v" + "9" * 20, "created": "2007-04-02"}]},
        GOOD_RECORD,
        "versions[0].version",
    ),
    "snapshot date not text": (
        "s.jsonl",
        {**GOOD_RECORD, "versions": [{"version": "v1", "created": 20070402}]},
        GOOD_RECORD,
        "versions[0].created",
    ),
    "snapshot tz overflow": (
        "s.jsonl",
        {**GOOD_RECORD, "versions": [], "update_date": OVERFLOWING_DATE},
        GOOD_RECORD,
        "update_date",
    ),
    "snapshot id version": (
        "s.jsonl",
        {**GOOD_RECORD, "id": "0704.0001v" + "9" * 20},
        GOOD_RECORD,
        "id",
    ),
    "beir id with a control character": (
        "corpus.jsonl",
        {**GOOD_DOCUMENT, "_id": "1\x00"},
        GOOD_DOCUMENT,
        "_id",
    ),
}
FORMAT_OF = {"e.jsonl": "daily-papers", "e.json": "daily-papers", "s.jsonl": "arxiv-snapshot"}


def write_records(path: Path, records: list[dict]) -> Path:
    """JSON lines, or a JSON array for ``.json`` (the standard library writes any integer)."""
    if path.suffix == ".json":
        path.write_text(json.dumps(records))
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def run_status(store: Engine) -> list[str]:
    with store.connect() as connection:
        return connection.execute(select(import_runs.c.status)).scalars().all()


@pytest.mark.parametrize("case", BAD_VALUES)
def test_a_bad_value_is_skipped_with_file_line_and_field(
    store: Engine, tmp_path: Path, case: str
) -> None:
    name, bad, good, field = BAD_VALUES[case]
    path = write_records(tmp_path / name, [bad, good])
    summary = import_file(store, path, fmt=FORMAT_OF.get(name, "beir"), on_error=OnError.skip)
    where = f"{path}: entry 1" if name.endswith(".json") else f"{path}:1"
    assert len(summary.error_messages) == 1
    assert summary.error_messages[0].startswith(f"{where}: field {field!r}: ")
    assert (summary.read, summary.added, summary.skipped) == (2, 1, 1)
    assert paper_count(store) == 1
    assert run_status(store) == ["done"]


@pytest.mark.parametrize("case", ["long version", "tz overflow", "upvotes 2^63"])
def test_a_bad_value_stops_the_import_and_closes_the_run(
    store: Engine, tmp_path: Path, case: str
) -> None:
    name, bad, good, field = BAD_VALUES[case]
    path = write_records(tmp_path / name, [good, bad])
    with pytest.raises(ImportAborted) as caught:
        import_file(store, path, on_error=OnError.abort, batch_size=1)
    assert (caught.value.error.line, caught.value.error.field) == (2, field)
    assert paper_count(store) == 1
    assert run_status(store) == ["failed"]


def test_an_unused_huge_number_does_not_stop_an_array(store: Engine, tmp_path: Path) -> None:
    """Fields the importer does not read may hold any number; the entries after it still count."""
    other = entry_with(id="2401.10242")
    path = write_records(tmp_path / "e.json", [entry_with(numComments=2**64), other])
    summary = import_file(store, path, on_error=OnError.skip)
    assert (summary.read, summary.added, summary.errors) == (2, 2, 0)


def test_an_unexpected_failure_closes_the_run(store: Engine, fixtures: Path) -> None:
    def progress(done: int) -> None:
        raise RuntimeError("the progress display broke")

    path = fixtures / "arxiv_snapshot" / "good.jsonl"
    with pytest.raises(RuntimeError):
        import_file(store, path, position=progress, prefetch=False)
    assert run_status(store) == ["failed"]
    summary = import_file(store, path)  # and the next import starts afresh or resumes
    assert summary.read + (summary.resumed_from_line or 0) == 3
    assert run_status(store)[-1] == "done"


@pytest.mark.skipif(not ON_POSTGRES, reason="on SQLite one machine imports: every part is granted")
def test_a_file_another_process_is_importing_is_left_to_it(store: Engine, fixtures: Path) -> None:
    path = fixtures / "arxiv_snapshot" / "good.jsonl"
    with holding_part(store, IMPORT_JOB, file_part(path, "arxiv-snapshot")) as held:
        assert held  # as the other process's import does while it runs
        with pytest.raises(ImportBusy, match="another process is importing"):
            import_file(store, path)
        assert run_status(store) == []  # its run is neither taken over nor closed
    assert import_file(store, path).added == 3


@pytest.mark.parametrize("batch_size", [1, 2, 1000])
def test_duplicate_ids_in_one_file_add_up(store: Engine, tmp_path: Path, batch_size: int) -> None:
    """Every record read is added, updated, unchanged or skipped, whatever the batch size."""
    renamed = entry_with(title="Renamed")
    other = entry_with(id="2401.10242")
    records = [GOOD_ENTRY, GOOD_ENTRY, renamed, {"paper": 1}, other]
    path = write_records(tmp_path / "e.jsonl", records)
    summary = import_file(store, path, on_error=OnError.skip, batch_size=batch_size)
    counted = (summary.added, summary.updated, summary.unchanged, summary.skipped)
    assert counted == (2, 1, 1, 1)
    assert summary.read == sum(counted) == 5
    with store.connect() as connection:
        run = connection.execute(select(import_runs)).mappings().one()
    stored = (run["added"], run["updated"], run["unchanged"], run["skipped"])
    assert stored == counted and run["read"] == 5


def test_reader_process_passes_bad_records_on(store: Engine, tmp_path: Path) -> None:
    """Errors found in the reader process reach the importer with their location."""
    path = write_records(tmp_path / "e.jsonl", [entry_with(upvotes=-1), GOOD_ENTRY])
    summary = import_file(store, path, on_error=OnError.skip, prefetch=True)
    assert summary.added == 1
    assert summary.error_messages[0].startswith(f"{path}:1: field 'paper.upvotes': ")
