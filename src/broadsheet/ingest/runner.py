"""Import a file into the store in batches, each batch and its checkpoint in one transaction.

A killed or failed import resumes where its last committed batch ended, as long as the file
is unchanged (same size and modification time); upserts make any overlap harmless. Each run
is a row of ``import_runs``: a resumed import is a new run that starts at its predecessor's
checkpoint and carries its counts on.

An import holds its file's part of the ``import`` job (``db/work_locks.py``) while it runs, so
a run still marked running whose file nobody holds was left by a process that died (or lost
its database before it could close the run): the next import of the file closes it as
failed. On SQLite, where every part is granted, that is any run still marked running.
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from pathlib import Path

from sqlalchemy import URL, Engine, select, update
from sqlalchemy.exc import DBAPIError

from broadsheet.db.engine import foreign_keys_unchecked
from broadsheet.db.schema import import_runs
from broadsheet.db.work_locks import holding_part
from broadsheet.ingest.prefetch import read_in_subprocess
from broadsheet.papers.record import Paper
from broadsheet.papers.repository import AuthorIdCache, UpsertCounts, upsert_papers
from broadsheet.search.keyword_index import save_keyword_index
from broadsheet.sources.base import RecordError
from broadsheet.sources.detect import FORMATS, detect_format

MAX_KEPT_ERRORS = 50
IMPORT_JOB = "import"  # the work lock an import holds on its file
# files smaller than this are parsed in-process: starting a reader process costs more
PREFETCH_MIN_BYTES = 8 * 1024 * 1024


class OnError(StrEnum):
    skip = "skip"
    abort = "abort"


@dataclass(slots=True)
class ImportSummary:
    """What one import did: ``read == added + updated + unchanged + skipped``.

    A record whose id came earlier in the file counts as updated or unchanged against it;
    ``errors`` counts bad records, skipped ones and the one that stopped an import.
    """

    path: str
    format: str
    read: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    errors: int = 0
    error_messages: list[str] = field(default_factory=list)
    resumed_from_line: int | None = None
    closed_stale_run: int | None = None  # a run left "running" by a process that died
    seconds: float = 0.0

    @property
    def papers_per_second(self) -> float:
        return self.read / self.seconds if self.seconds else 0.0


class ImportAborted(Exception):
    """A bad record stopped the import (``--on-error abort``); earlier batches are stored."""

    def __init__(self, error: RecordError, summary: ImportSummary):
        self.error, self.summary = error, summary
        super().__init__(str(error))


class ImportBusy(Exception):
    """Another process is importing the same file now."""


class ImportStopped(Exception):
    """The database failed under an import. ``cause`` says how, in one line without the
    batch's data; the next import of the file resumes after record ``resume_line`` (or one
    batch later, when the database went away while acknowledging that batch's commit)."""

    def __init__(self, cause: str, resume_line: int):
        self.cause, self.resume_line = cause, resume_line
        super().__init__(cause)


@dataclass(frozen=True, slots=True)
class _Start:
    run_id: int
    offset: int  # where reading starts: a byte offset or a record index
    line: int  # records consumed before it
    stale_run: int | None = None  # a run left "running" by a process that died, now failed


COUNTS = ("read", "added", "updated", "unchanged", "skipped", "errors")


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def file_part(path: Path, fmt: str) -> int:
    """The part of the ``import`` job that stands for one file (a signed 32-bit number)."""
    number = zlib.crc32(f"{fmt}:{path.resolve()}".encode())
    return number - 2**32 if number >= 2**31 else number


def _start_run(engine: Engine, path: Path, fmt: str, restart: bool) -> _Start:
    """A new run, resuming the file's last run unless that one finished, the file changed
    since or ``restart``. The caller holds the file's part of the import job, so a run of
    the file still marked running was left by a process that is gone: it is closed as
    failed."""
    stat = path.stat()
    key = str(path.resolve())
    with engine.begin() as connection:
        previous = (
            connection.execute(
                select(import_runs)
                .where(import_runs.c.path == key, import_runs.c.format == fmt)
                .order_by(import_runs.c.id.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        stale = (
            connection.execute(
                update(import_runs)
                .where(
                    import_runs.c.path == key,
                    import_runs.c.format == fmt,
                    import_runs.c.status == "running",
                )
                .values(status="failed", finished_at=_now())
                .returning(import_runs.c.id)
            )
            .scalars()
            .all()
        )
        same_file = (
            previous is not None
            and previous["file_size"] == stat.st_size
            and previous["file_mtime_ns"] == stat.st_mtime_ns
        )
        resume = same_file and previous["status"] != "done" and not restart
        carried = {name: previous[name] if resume else 0 for name in COUNTS}
        offset, line = (previous["resume_offset"], previous["resume_line"]) if resume else (0, 0)
        run_id = connection.execute(
            import_runs.insert().values(
                path=key,
                format=fmt,
                file_size=stat.st_size,
                file_mtime_ns=stat.st_mtime_ns,
                status="running",
                resume_offset=offset,
                resume_line=line,
                started_at=_now(),
                **carried,
            )
        ).inserted_primary_key[0]
    return _Start(run_id, offset, line, max(stale, default=None))


def _finish_run(engine: Engine, run_id: int, status: str) -> int:
    """Close the run; the checkpoint it ends at."""
    with engine.begin() as connection:
        return connection.execute(
            import_runs.update()
            .where(import_runs.c.id == run_id)
            .values(status=status, finished_at=_now())
            .returning(import_runs.c.resume_line)
        ).scalar_one()


def _where(url: URL) -> str:
    """The database as a person locates it: host and port, a socket's folder, or a file."""
    if url.get_backend_name() == "sqlite":
        return url.database or "memory"
    host = url.host or url.query.get("host") or "localhost"
    return f"{host}:{url.port or 5432}" if url.host else str(host)


def _reason(error: DBAPIError) -> str:
    """The driver's own words, first line only: never the statement or its parameters."""
    words = str(error.orig).strip().splitlines()
    reason = words[0].rsplit(": ", 1)[-1].strip() if words else type(error.orig).__name__
    return reason[:1].lower() + reason[1:200]


def describe_failure(url: URL, error: DBAPIError, unreachable: DBAPIError | None) -> str:
    """One line on a database failure: ``unreachable`` is the error a new connection got, or
    None when the database answered again."""
    where = _where(url)
    if unreachable is not None:
        return f"the database at {where} is unreachable ({_reason(unreachable)})"
    if error.connection_invalidated:
        return f"the connection to the database at {where} was lost ({_reason(error)})"
    return f"the database at {where} refused a batch ({_reason(error)})"


def _close(engine: Engine, run_id: int, status: str) -> int | Exception:
    """Close the run: the checkpoint it ends at, or why it could not be closed (the next
    import of the file closes it)."""
    try:
        return _finish_run(engine, run_id, status)
    except Exception as exc:  # the error that stopped the import matters more
        return exc


def _probe(engine: Engine) -> DBAPIError | None:
    """The error a new connection to the database gets, or None when it answers."""
    try:
        with engine.connect() as connection:
            connection.execute(select(1))
    except DBAPIError as exc:
        return exc
    return None


def import_file(
    engine: Engine,
    path: Path,
    fmt: str | None = None,
    on_error: OnError = OnError.abort,
    batch_size: int = 10_000,
    restart: bool = False,
    position: Callable[[int], None] | None = None,
    prefetch: bool | None = None,
) -> ImportSummary:
    """Import ``path`` (format detected unless given). ``position`` gets bytes read so far.

    ``prefetch`` reads in a child process (default: for large files on multi-core machines).
    ImportBusy when another process imports the file now; ImportStopped when the database
    fails under the import (the run is closed as failed, now or by the next import).
    """
    fmt = fmt or detect_format(path)
    try:
        with holding_part(engine, IMPORT_JOB, file_part(path, fmt)) as held:
            if not held:
                raise ImportBusy(f"another process is importing {path} now")
            start = _start_run(engine, path, fmt, restart)
            return _import(engine, path, fmt, start, on_error, batch_size, position, prefetch)
    except DBAPIError as exc:  # before the run started: nothing of it to close
        raise ImportStopped(describe_failure(engine.url, exc, _probe(engine)), 0) from None


def _import(
    engine: Engine,
    path: Path,
    fmt: str,
    start: _Start,
    on_error: OnError,
    batch_size: int,
    position: Callable[[int], None] | None,
    prefetch: bool | None,
) -> ImportSummary:
    source = FORMATS[fmt]
    run_id, start_offset, start_line = start.run_id, start.offset, start.line
    summary = ImportSummary(path=str(path), format=fmt, closed_stale_run=start.stale_run)
    if start_line:
        summary.resumed_from_line = start_line
    started = time.perf_counter()
    batch: list[Paper] = []
    batch_read = batch_errors = 0
    last_resume = (start_offset, start_line)
    committed_line = start_line  # the checkpoint of the last batch stored

    author_cache = AuthorIdCache()

    def flush() -> None:
        nonlocal batch, batch_read, batch_errors, committed_line
        try:
            counts = write_batch()
        except BaseException:
            author_cache.discard()
            raise
        author_cache.commit()
        committed_line = last_resume[1]
        summary.read += batch_read
        summary.added += counts.added
        summary.updated += counts.updated
        summary.unchanged += counts.unchanged
        summary.skipped += batch_errors
        summary.errors += batch_errors
        batch, batch_read, batch_errors = [], 0, 0

    def write_batch() -> UpsertCounts:
        # the batch writes each paper before the rows that refer to it (about 8% faster)
        with (
            engine.connect() as connection,
            foreign_keys_unchecked(connection),
            connection.begin(),
        ):
            counts = upsert_papers(connection, batch, author_cache) if batch else UpsertCounts()
            connection.execute(
                import_runs.update()
                .where(import_runs.c.id == run_id)
                .values(
                    resume_offset=last_resume[0],
                    resume_line=last_resume[1],
                    read=import_runs.c.read + batch_read,
                    added=import_runs.c.added + counts.added,
                    updated=import_runs.c.updated + counts.updated,
                    unchanged=import_runs.c.unchanged + counts.unchanged,
                    skipped=import_runs.c.skipped + batch_errors,
                    errors=import_runs.c.errors + batch_errors,
                )
            )
        return counts

    read = partial(source.read, path, start_offset, start_line)
    use_reader_process = (
        prefetch
        if prefetch is not None
        else (os.cpu_count() or 1) > 1 and path.stat().st_size >= PREFETCH_MIN_BYTES
    )
    items = read_in_subprocess(read, position) if use_reader_process else read(position=position)
    try:
        for item in items:
            if item.error is not None:
                if on_error == OnError.abort:
                    summary.errors += 1
                    summary.error_messages.append(str(item.error))
                    summary.seconds = time.perf_counter() - started
                    raise ImportAborted(item.error, summary)
                batch_errors += 1
                if len(summary.error_messages) < MAX_KEPT_ERRORS:
                    summary.error_messages.append(str(item.error))
            else:
                batch.append(item.paper)
            batch_read += 1
            last_resume = (item.resume_at, item.line)
            if batch_read >= batch_size:
                flush()
        flush()
    except BaseException as exc:
        # whatever stopped it, the run is not left "running"; its last batch is its checkpoint
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        closed = _close(engine, run_id, status)
        if isinstance(exc, DBAPIError):  # said in one line: the statement holds the batch
            unreachable = closed if isinstance(closed, DBAPIError) else None
            cause = describe_failure(engine.url, exc, unreachable)
            # unclosed, a batch whose commit's answer was cut off may be stored: the next
            # run knows; closed, the run says where it ends
            line = closed if isinstance(closed, int) else committed_line
            raise ImportStopped(cause, line) from None
        raise
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()
    _finish_run(engine, run_id, "done")
    if summary.added or summary.updated:
        save_keyword_index(engine, start=False)  # a saved keyword index takes the import in
    summary.seconds = time.perf_counter() - started
    return summary
