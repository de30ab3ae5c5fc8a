"""Backups of a SQLite store: the file through SQLite's online backup API, and the files beside it.

Beside ``<store>`` live ``<store>.secret`` (the signing key, ``secret_key.py``), the saved vectors
``<store>.ann/`` (``search/ann.py``) and the saved keyword index ``<store>.keywords/``
(``search/keyword_saved.py``). A plain file copy of a store that is being written can catch
pages of different moments (and misses what still sits in ``-wal``); the backup API copies one
read snapshot while writers go on. It runs as a single step: a step-wise backup restarts
whenever another connection writes, so under a steady stream of votes it might never end.

The copied indexes must agree with the copied rows:

- saved vectors record the newest row they hold, and searches read later rows from the table,
  so their files are copied *before* the store (a copy whose rows reach at least as far);
- the keyword index's state is a row of ``keyword_saved``, changed by ``broadsheet index`` at
  the end of a save. Its tantivy writer lock is held from the folder's copy to the end of the
  store's, so no save runs in between (``index`` skips its keyword save meanwhile).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
from sqlalchemy import make_url

from broadsheet.db.backup import BackupError, Progress, Snapshot, remove_quietly

STORE, SECRET, ANN, KEYWORDS = "store.sqlite3", "store.secret", "ann", "keywords"
GENERATION_FILES = ("usearch", "seqs.npy", "f16.npy")  # search/ann.py's files of a generation
LOCK_WAIT = 300.0  # seconds to wait for a running keyword save to end
TANTIVY_LOCKS = (".tantivy-writer.lock", ".tantivy-meta.lock")


def _store_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError(f"{url}: an in-memory store has nothing to back up or restore")
    return Path(database)


def _beside(path: Path, suffix: str) -> Path:
    return path.with_name(f"{path.name}{suffix}")


def _connect(path: Path) -> sqlite3.Connection:
    """A connection to an existing store file (a WAL store needs a writable one to read)."""
    if not path.is_file():
        raise BackupError(f"{path}: no such store")
    connection = sqlite3.connect(path, timeout=30)
    connection.execute("PRAGMA busy_timeout=30000")
    return connection


def table_counts(connection: sqlite3.Connection) -> dict[str, int]:
    """Rows of every table; a virtual table (FTS5) is counted through its shadow tables."""
    names = connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%'"
        " ESCAPE '\\' AND sql NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name"
    ).fetchall()
    return {
        name: connection.execute(
            f'SELECT count(*) FROM "{name.replace(chr(34), chr(34) * 2)}"'
        ).fetchone()[0]
        for (name,) in names
    }


def _revision(connection: sqlite3.Connection) -> str | None:
    try:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None
    return row[0] if row else None


@contextmanager
def keyword_saves_held(folder: Path, wait: float = LOCK_WAIT) -> Iterator[None]:
    """No keyword index save runs in ``folder`` inside this block (a running one is awaited)."""
    import tantivy

    if not folder.is_dir() or not tantivy.Index.exists(str(folder)):
        yield
        return
    index = tantivy.Index.open(str(folder))
    deadline = time.monotonic() + wait
    while True:
        try:
            writer = index.writer(heap_size=15_000_000, num_threads=1)  # tantivy's least
            break
        except ValueError:
            if time.monotonic() > deadline:
                raise BackupError(
                    f"{folder}: a keyword index save has held its lock for {wait:.0f} s; "
                    "try again when `broadsheet index` has finished"
                ) from None
            time.sleep(0.5)
    try:
        yield
    finally:
        writer.wait_merging_threads()  # releases the lock; nothing was added, nothing changes


def _copy_keywords(source: Path, target: Path) -> bool:
    """Copy the saved keyword index; False if a first save removed it meanwhile (a first save
    starts afresh without the lock: searches do not use the index until it ends)."""
    if not source.is_dir():
        return True
    try:
        shutil.copytree(source, target, ignore=lambda _dir, names: [*TANTIVY_LOCKS])
    except (FileNotFoundError, shutil.Error):
        shutil.rmtree(target, ignore_errors=True)
        return False
    return True


def _copy_ann(source: Path, target: Path, attempts: int = 5) -> None:
    """Each model's pointer and the generation it names; again if a save replaced one meanwhile."""
    if not source.is_dir():
        return
    for _ in range(attempts):
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        try:
            for pointer in sorted(source.glob("*.json")):
                data = pointer.read_bytes()
                meta = orjson.loads(data)
                if "generation" in meta:
                    names = [
                        f"{pointer.stem}.{meta['generation']}.{kind}" for kind in GENERATION_FILES
                    ]
                else:  # the earlier layout: one graph beside the pointer
                    names = [f"{pointer.stem}.usearch"]
                for name in names:
                    shutil.copy2(source / name, target / name)
                (target / pointer.name).write_bytes(data)
            return
        except FileNotFoundError:
            continue
    raise BackupError(f"{source}: saved vectors kept changing during {attempts} copies")


def _online_copy(source: Path, target: Path, progress: Progress) -> None:
    progress("store", 0, 1)
    reader = _connect(source)
    copy = sqlite3.connect(target)
    try:
        reader.backup(copy, pages=-1)  # one step, one snapshot (see the module's docstring)
        copy.execute("PRAGMA journal_mode=DELETE")  # one file in the archive; WAL again on use
    finally:
        copy.close()
        reader.close()
    progress("store", 1, 1)


class SqliteBackup:
    def snapshot(self, url: str, folder: Path, progress: Progress) -> Snapshot:
        path = _store_path(url)
        if not path.is_file():
            raise BackupError(f"{path}: no such store")
        notes = []
        with keyword_saves_held(_beside(path, ".keywords")):
            progress("indexes", 0, 2)
            _copy_ann(_beside(path, ".ann"), folder / ANN)
            progress("indexes", 1, 2)
            if not _copy_keywords(_beside(path, ".keywords"), folder / KEYWORDS):
                notes.append("keyword index not copied (being rebuilt); `index` saves it again")
            progress("indexes", 2, 2)
            _online_copy(path, folder / STORE, progress)
        if _beside(path, ".secret").is_file():
            shutil.copy2(_beside(path, ".secret"), folder / SECRET)
        else:
            notes.append("no signing key file beside the store (BROADSHEET_SECRET_KEY is used)")
        connection = sqlite3.connect(folder / STORE)
        try:
            return Snapshot(_revision(connection), table_counts(connection), notes)
        finally:
            connection.close()

    def holds_data(self, url: str) -> bool:
        path = _store_path(url)
        if not path.is_file() or path.stat().st_size == 0:
            return False
        connection = _connect(path)
        try:
            return connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
        finally:
            connection.close()

    def restore(self, url: str, folder: Path, replace: bool, progress: Progress) -> None:
        """Move the unpacked files into place (``folder`` is on the store's file system)."""
        path = _store_path(url)
        progress("restore", 0, 1)
        # a stale -wal would be replayed onto the restored file
        remove_quietly(_beside(path, "-wal"), _beside(path, "-shm"), _beside(path, "-journal"))
        os.replace(folder / STORE, path)
        for name, suffix in ((ANN, ".ann"), (KEYWORDS, ".keywords")):
            remove_quietly(_beside(path, suffix))
            if (folder / name).is_dir():
                os.replace(folder / name, _beside(path, suffix))
        if (folder / SECRET).is_file():
            os.chmod(folder / SECRET, 0o600)
            os.replace(folder / SECRET, _beside(path, ".secret"))
        progress("restore", 1, 1)

    def counts(self, url: str) -> dict[str, int]:
        connection = _connect(_store_path(url))
        try:
            return table_counts(connection)
        finally:
            connection.close()

    def work_dir(self, url: str) -> Path | None:
        folder = _store_path(url).resolve().parent
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @contextmanager
    def scratch_copy(self, folder: Path, server_url: str | None) -> Iterator[str | None]:
        yield f"sqlite:///{folder / STORE}"  # the unpacked archive is already a throwaway copy
