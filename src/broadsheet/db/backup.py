"""Backups that restore: one archive of the store, its saved indexes and its signing key.

An archive is a tar file (gzip or xz compressed when its name ends so) whose first member is
``manifest.json``: the app version, the store's Alembic revision and engine, when it was made,
every other member's size and SHA-256, and the row count of every table in the copy. The other
members are what the engine's backend (``backup_sqlite``, ``backup_postgres``) wrote: a SQLite
store copied with SQLite's online backup API plus the files kept beside it, or a PostgreSQL
``pg_dump --format=custom``. Both backends count the rows in the very snapshot they copy, so a
backup taken while the site writes restores to counts that match its manifest exactly.

The archive is written under a temporary name beside its destination and renamed at the end:
a file with the final name is always a whole archive. Restoring checks every checksum before
anything in the target changes, and verifies the restored counts afterwards.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Protocol

import orjson
from alembic.script import ScriptDirectory
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

MANIFEST = "manifest.json"
FORMAT = 1  # the archive layout; raised when a later layout could not be read by this code
CHUNK = 1 << 20  # bytes hashed and copied at a time

# (step, done, total): a step's progress; total 0 while unknown
Progress = Callable[[str, int, int], None]


class BackupError(Exception):
    """An archive that cannot be made, read or restored; the message names the file."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a backend wrote into the staging folder, and what the copy holds."""

    revision: str | None
    tables: dict[str, int]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Manifest:
    engine: str
    revision: str | None
    app_version: str
    created_at: str
    files: dict[str, dict[str, object]]  # name -> {"sha256", "bytes"}
    tables: dict[str, int]
    notes: list[str] = field(default_factory=list)
    format: int = FORMAT

    def to_json(self) -> bytes:
        fields = {name: getattr(self, name) for name in self.__slots__}
        return orjson.dumps(fields, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    @classmethod
    def from_json(cls, data: bytes, archive: Path) -> Manifest:
        try:
            fields = orjson.loads(data)
            manifest = cls(**{name: fields[name] for name in cls.__slots__ if name in fields})
        except (orjson.JSONDecodeError, TypeError, KeyError) as exc:
            raise BackupError(f"{archive}: {MANIFEST} is not a backup manifest ({exc})") from None
        if manifest.format > FORMAT:
            raise BackupError(
                f"{archive}: archive format {manifest.format} is newer than this code reads "
                f"({FORMAT}); restore it with a newer broadsheet"
            )
        return manifest


@dataclass(frozen=True, slots=True)
class Verified:
    """The counts of a restored copy against the manifest's; ``skipped`` says why none."""

    counts: dict[str, int]
    mismatches: dict[str, tuple[int, int | None]]  # table -> (manifest, found; None: missing)
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return self.skipped is None and not self.mismatches


class EngineBackup(Protocol):
    """One engine's way of copying a store out and putting it back."""

    def snapshot(self, url: str, folder: Path, progress: Progress) -> Snapshot:
        """Write a consistent copy of the store (and the files kept beside it) into ``folder``."""

    def holds_data(self, url: str) -> bool:
        """Whether the store at ``url`` has any tables (restoring would replace them)."""

    def restore(self, url: str, folder: Path, replace: bool, progress: Progress) -> None:
        """Put the copy in ``folder`` into the store at ``url`` (emptied first: ``replace``)."""

    def counts(self, url: str) -> dict[str, int]:
        """The row count of every table of the store at ``url``."""

    def work_dir(self, url: str) -> Path | None:
        """Where to unpack an archive for ``url``: beside a store file, so that it is renamed
        into place; None: the system's temporary folder."""

    def scratch_copy(
        self, folder: Path, server_url: str | None
    ) -> AbstractContextManager[str | None]:
        """The URL of a throwaway store restored from ``folder`` (None: none can be made)."""


_BACKENDS = {  # engine name -> "module:class", imported on first use
    "sqlite": "broadsheet.db.backup_sqlite:SqliteBackup",
    "postgresql": "broadsheet.db.backup_postgres:PostgresBackup",
}


def engine_of(url: str) -> str:
    return make_url(url).get_backend_name()


def backend_for(engine: str) -> EngineBackup:
    if engine not in _BACKENDS:
        raise BackupError(f"no backup support for the {engine!r} engine")
    module, _, cls = _BACKENDS[engine].partition(":")
    return getattr(importlib.import_module(module), cls)()


def app_version() -> str:
    try:
        return metadata.version("broadsheet")
    except metadata.PackageNotFoundError:
        return "unknown"


def known_revisions() -> tuple[set[str], str | None]:
    """Every Alembic revision this code has, and its newest."""
    from broadsheet.db.engine import MIGRATIONS_DIR

    script = ScriptDirectory(str(MIGRATIONS_DIR))
    return {rev.revision for rev in script.walk_revisions()}, script.get_current_head()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _members(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


def _mode(name: str) -> str:
    if name.endswith((".tar.gz", ".tgz")):
        return "gz"
    if name.endswith((".tar.xz", ".txz")):
        return "xz"
    return ""


def archive_path(dest: Path, engine: str, now: datetime) -> Path:
    """``dest`` itself, or a dated ``.tar.gz`` name inside it when it is a folder."""
    if dest.is_dir():
        return dest / f"broadsheet-{engine}-{now:%Y%m%dT%H%M%SZ}.tar.gz"
    return dest


def _noop(_step: str, _done: int, _total: int) -> None:
    pass


def backup_store(url: str, dest: Path, progress: Progress | None = None) -> tuple[Path, Manifest]:
    """Write one archive of the store at ``url`` to ``dest`` (a file name or a folder)."""
    progress = progress or _noop
    engine = engine_of(url)
    backend = backend_for(engine)
    now = datetime.now(UTC)
    target = archive_path(dest, engine, now)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".broadsheet-backup-", dir=target.parent))
    partial = target.with_name(f".{target.name}.part-{os.getpid()}")
    try:
        with _database_errors(url):
            snapshot = backend.snapshot(url, staging, progress)
        members = _members(staging)
        files: dict[str, dict[str, object]] = {}
        for number, path in enumerate(members, 1):
            name = path.relative_to(staging).as_posix()
            files[name] = {"sha256": sha256_of(path), "bytes": path.stat().st_size}
            progress("checksums", number, len(members))
        manifest = Manifest(
            engine=engine,
            revision=snapshot.revision,
            app_version=app_version(),
            created_at=now.isoformat(timespec="seconds"),
            files=files,
            tables=snapshot.tables,
            notes=snapshot.notes,
        )
        total = sum(int(entry["bytes"]) for entry in files.values())
        written = 0
        mode = _mode(target.name)
        # gzip level 6: as small as 9 within a percent, in half the time (bench/backup.py)
        level = {"gz": {"compresslevel": 6}, "xz": {"preset": 6}}.get(mode, {})
        with tarfile.open(partial, f"w:{mode}", **level) as tar:
            data = manifest.to_json()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(data), int(now.timestamp()), 0o600
            tar.addfile(info, io.BytesIO(data))
            for path in members:
                tar.add(path, arcname=path.relative_to(staging).as_posix(), recursive=False)
                written += path.stat().st_size
                progress("archive", written, total)
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(partial, 0o600)  # it holds the signing key and every member's data
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, manifest


def _safe_name(name: str, archive: Path) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise BackupError(f"{archive}: member {name!r} would be written outside the archive")
    return path


def unpack(archive: Path, folder: Path, progress: Progress | None = None) -> Manifest:
    """Check ``archive`` against its manifest while extracting it into ``folder``.

    Raises BackupError, naming the archive (and the member), for an archive that is missing,
    truncated or corrupt, a member whose checksum or size differs, or one the manifest lacks.
    """
    progress = progress or _noop
    if not archive.is_file():
        raise BackupError(f"{archive}: no such archive")
    manifest: Manifest | None = None
    seen: set[str] = set()
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                if manifest is None:
                    if member.name != MANIFEST or not member.isfile():
                        raise BackupError(f"{archive}: the first member is not {MANIFEST}")
                    manifest = Manifest.from_json(tar.extractfile(member).read(), archive)
                    total = sum(int(entry["bytes"]) for entry in manifest.files.values())
                    done = 0
                    continue
                if member.isdir():
                    continue
                name = _safe_name(member.name, archive).as_posix()
                expected = manifest.files.get(name)
                if not member.isfile() or expected is None or name in seen:
                    raise BackupError(f"{archive}: unexpected member {name!r}")
                seen.add(name)
                path = folder / name
                path.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                source = tar.extractfile(member)
                with path.open("wb") as out:
                    while chunk := source.read(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        done += len(chunk)
                        progress("check", done, total)
                if digest.hexdigest() != expected["sha256"] or member.size != expected["bytes"]:
                    raise BackupError(f"{archive}: {name} does not match its checksum (corrupt)")
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, BackupError):
            raise
        raise BackupError(f"{archive}: truncated or corrupt archive ({exc})") from None
    if manifest is None:
        raise BackupError(f"{archive}: empty archive, no {MANIFEST}")
    missing = sorted(set(manifest.files) - seen)
    if missing:
        raise BackupError(f"{archive}: truncated, missing {', '.join(missing)}")
    return manifest


def check_restorable(manifest: Manifest, archive: Path, url: str) -> None:
    """Refuse an archive of another engine or of a schema newer than this code."""
    engine = engine_of(url)
    if manifest.engine != engine:
        raise BackupError(
            f"{archive}: holds a {manifest.engine} store, the target is {engine}; restore it "
            f"into a {manifest.engine} store, then `broadsheet db copy` to move engines"
        )
    check_restorable_revision(manifest, archive)


def compare(manifest: Manifest, counts: dict[str, int]) -> Verified:
    mismatches = {
        table: (expected, counts.get(table))
        for table, expected in manifest.tables.items()
        if counts.get(table) != expected
    }
    return Verified(counts, mismatches)


def restore_store(
    archive: Path, url: str, replace: bool = False, progress: Progress | None = None
) -> tuple[Manifest, Verified]:
    """Put the store in ``archive`` back at ``url``, then count its tables against the
    manifest. Refuses (BackupError) a store that holds tables unless ``replace``."""
    progress = progress or _noop
    backend = backend_for(engine_of(url))
    work_dir = backend.work_dir(url)
    with tempfile.TemporaryDirectory(prefix=".broadsheet-restore-", dir=work_dir) as tmp:
        folder = Path(tmp)
        manifest = unpack(archive, folder, progress)
        check_restorable(manifest, archive, url)
        with _database_errors(url):
            if not replace and backend.holds_data(url):
                raise BackupError(
                    f"{_shown(url)} is not empty; pass --replace to overwrite it with {archive}"
                )
            backend.restore(url, folder, replace, progress)
            return manifest, compare(manifest, backend.counts(url))


def verify_archive(
    archive: Path, server_url: str | None = None, progress: Progress | None = None
) -> tuple[Manifest, Verified]:
    """Check ``archive``'s checksums, restore a throwaway copy and count every table in it.

    A PostgreSQL archive needs a server (``server_url``) that lets us create a scratch
    database; without one the result is ``skipped``, saying why.
    """
    progress = progress or _noop
    beside = archive.parent if os.access(archive.parent, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix=".broadsheet-verify-", dir=beside) as tmp:
        folder = Path(tmp) / "archive"
        manifest = unpack(archive, folder, progress)
        check_restorable_revision(manifest, archive)
        backend = backend_for(manifest.engine)
        with backend.scratch_copy(folder, server_url) as copy_url:
            if copy_url is None:
                return manifest, Verified({}, {}, skipped=_no_scratch(manifest, server_url))
            return manifest, compare(manifest, backend.counts(copy_url))


def check_restorable_revision(manifest: Manifest, archive: Path) -> None:
    revisions, head = known_revisions()
    if manifest.revision is not None and manifest.revision not in revisions:
        raise BackupError(
            f"{archive}: its schema revision {manifest.revision} is newer than this code's "
            f"({head}); restore it with broadsheet {manifest.app_version} or newer"
        )


def _no_scratch(manifest: Manifest, server_url: str | None) -> str:
    if server_url is None or engine_of(server_url) != manifest.engine:
        return (
            f"not verified: a {manifest.engine} archive needs a {manifest.engine} server for "
            "a scratch database (pass --database URL)"
        )
    return f"not verified: could not create a scratch database on {_shown(server_url)}"


@contextmanager
def _database_errors(url: str) -> Iterator[None]:
    """A store that cannot be reached, as a BackupError naming it (without its password)."""
    try:
        yield
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise BackupError(f"{_shown(url)}: {reason}") from None


def _shown(url: str) -> str:
    """``url`` without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def remove_quietly(*paths: Path) -> None:
    for path in paths:
        with suppress(FileNotFoundError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
