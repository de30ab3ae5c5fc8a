"""`broadsheet backup`, `restore` and `backup --verify` on the engine under test."""

from __future__ import annotations

import io
import tarfile
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from broadsheet.cli import app
from broadsheet.community.accounts import Member, create_member
from broadsheet.community.comments import add_comment
from broadsheet.community.votes import set_vote
from broadsheet.config import Settings, get_settings
from broadsheet.db.backup import (
    MANIFEST,
    BackupError,
    backend_for,
    backup_store,
    known_revisions,
    restore_store,
    verify_archive,
)
from broadsheet.db.engine import make_engine
from broadsheet.db.schema import comments, papers, votes
from broadsheet.papers.record import FeedPlacement, Paper
from broadsheet.papers.repository import upsert_papers
from broadsheet.secret_key import secret_key
from databases import ON_POSTGRES, drop_database, new_database_url

OTHER_ENGINE = "sqlite" if ON_POSTGRES else "postgresql"


def make_paper(paper_id: str) -> Paper:
    return Paper(
        id=paper_id,
        title_raw=f"Paper {paper_id}",
        abstract_raw=f"The abstract of {paper_id}.",
        source="test",
        authors=["Ada Lovelace"],
        published_at=datetime(2024, 1, 10, 12),
        feed=FeedPlacement(day=datetime(2024, 1, 10).date(), source="test"),
    )


def add_paper(store: Engine, paper_id: str) -> None:
    with store.begin() as connection:
        upsert_papers(connection, [make_paper(paper_id)])


@pytest.fixture
def filled(store: Engine) -> Engine:
    """A store with papers, members, votes and comments."""
    with store.begin() as connection:
        upsert_papers(connection, [make_paper(f"2401.{n:05d}") for n in range(1, 6)])
    ada = create_member(store, "ada", "long enough password")
    bob = create_member(store, "bob", "long enough password")
    for member in (ada, bob):
        set_vote(store, member, "2401.00001", voted=True)
    add_comment(store, ada, "2401.00002", "A fine paper.")
    return store


@pytest.fixture
def target(tmp_path: Path) -> Iterator[str]:
    """An empty store to restore into."""
    folder = tmp_path / "restored"
    folder.mkdir()
    url = new_database_url(folder, name="restored")
    yield url
    drop_database(url)


def counts(url: str) -> dict[str, int]:
    backend = backend_for(make_engine(url).dialect.name)
    return backend.counts(url)


def rewrite_manifest(archive: Path, change) -> Path:
    """A copy of ``archive`` whose manifest ``change`` edited (every other member as it was)."""
    tampered = archive.with_name(f"tampered-{archive.name}")
    with tarfile.open(archive) as source, tarfile.open(tampered, "w:gz") as out:
        for member in source:
            data = source.extractfile(member).read() if member.isfile() else None
            if member.name == MANIFEST:
                fields = orjson.loads(data)
                change(fields)
                data = orjson.dumps(fields)
                member.size = len(data)
            out.addfile(member, io.BytesIO(data) if data is not None else None)
    return tampered


def test_round_trip_through_the_cli(
    filled: Engine, cli: CliRunner, database_url: str, target: str, tmp_path: Path
) -> None:
    key = secret_key(get_settings())
    archive = tmp_path / "backups" / "site.tar.gz"
    made = cli.invoke(app, ["backup", str(archive)])
    assert made.exit_code == 0, made.output
    assert archive.is_file()
    assert [path.name for path in archive.parent.iterdir()] == ["site.tar.gz"]  # no leftovers

    with tarfile.open(archive) as tar:
        names = tar.getnames()
        manifest = orjson.loads(tar.extractfile(MANIFEST).read())
    assert names[0] == MANIFEST
    assert manifest["engine"] == make_engine(database_url).dialect.name
    assert manifest["revision"] == known_revisions()[1]
    assert manifest["tables"]["papers"] == 5
    assert manifest["tables"]["votes"] == 2
    assert manifest["tables"]["comments"] == 1
    assert set(manifest["files"]) == set(names[1:])
    assert all(len(entry["sha256"]) == 64 for entry in manifest["files"].values())

    checked = cli.invoke(app, ["backup", "--verify", str(archive)])
    assert checked.exit_code == 0, checked.output
    assert "every count matches" in checked.output

    restored = cli.invoke(app, ["restore", str(archive), "--database", target])
    assert restored.exit_code == 0, restored.output
    assert counts(target) == counts(database_url) == manifest["tables"]
    assert secret_key(Settings(database_url=target)) == key
    engine = make_engine(target)
    try:
        with engine.connect() as connection:
            stored = connection.execute(
                select(papers.c.member_votes).where(papers.c.id == "2401.00001")
            ).scalar_one()
        assert stored == 2
    finally:
        engine.dispose()


def test_a_folder_gets_a_dated_archive(filled: Engine, database_url: str, tmp_path: Path) -> None:
    written, manifest = backup_store(database_url, tmp_path)
    assert written.parent == tmp_path
    assert written.name.startswith(f"broadsheet-{manifest.engine}-")
    assert written.name.endswith(".tar.gz")


def test_a_failed_backup_leaves_no_archive(tmp_path: Path) -> None:
    missing = new_database_url(tmp_path / "nowhere", name="missing")
    if ON_POSTGRES:
        drop_database(missing)
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(BackupError):
        backup_store(missing, dest / "site.tar")
    assert list(dest.iterdir()) == []


def test_backup_during_a_write_burst_keeps_every_acknowledged_write(
    filled: Engine, database_url: str, target: str, tmp_path: Path
) -> None:
    members = [create_member(filled, f"voter{n:02d}", "long enough password") for n in range(5)]
    acked: list[tuple[str, object]] = []  # appended only once the write has committed
    stop = threading.Event()
    failures: list[BaseException] = []

    def burst() -> None:
        try:
            for n in range(1, 400):  # within each member's vote and comment allowance
                if stop.is_set():
                    return
                paper_id = f"2402.{n:05d}"
                add_paper(filled, paper_id)
                acked.append(("paper", paper_id))
                member: Member = members[n % len(members)]
                set_vote(filled, member, paper_id, voted=True)
                acked.append(("vote", (member.id, paper_id)))
                if n % 10 == 0:
                    comment = add_comment(filled, members[(n // 10) % 5], paper_id, f"#{n}")
                    acked.append(("comment", comment.id))
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)

    writer = threading.Thread(target=burst)
    writer.start()
    try:
        while len(acked) < 30 and writer.is_alive():
            threading.Event().wait(0.01)
        before = list(acked)  # every write acknowledged before the backup starts
        archive, manifest = backup_store(database_url, tmp_path / "burst.tar")
    finally:
        stop.set()
        writer.join()
    assert not failures
    assert len(acked) > len(before)  # the writer went on after the backup began

    _, verified = restore_store(archive, target)
    assert verified.ok, verified.mismatches
    engine = make_engine(target)
    try:
        with engine.connect() as connection:
            have_papers = set(connection.execute(select(papers.c.id)).scalars())
            have_votes = set(connection.execute(select(votes.c.user_id, votes.c.paper_id)).all())
            have_comments = set(connection.execute(select(comments.c.id)).scalars())
            vote_rows = dict(
                connection.execute(
                    select(votes.c.paper_id, func.count()).group_by(votes.c.paper_id)
                ).all()
            )
            comment_rows = dict(
                connection.execute(
                    select(comments.c.paper_id, func.count()).group_by(comments.c.paper_id)
                ).all()
            )
            counters = connection.execute(
                select(papers.c.id, papers.c.member_votes, papers.c.comment_count)
            ).all()
    finally:
        engine.dispose()
    for kind, value in before:
        held = {"paper": have_papers, "vote": have_votes, "comment": have_comments}[kind]
        assert (tuple(value) if kind == "vote" else value) in held, (kind, value)
    for paper_id, member_votes, comment_count in counters:
        assert member_votes == vote_rows.get(paper_id, 0), paper_id
        assert comment_count == comment_rows.get(paper_id, 0), paper_id
    assert manifest.tables["papers"] == len(have_papers)


def test_a_corrupt_member_is_named(filled: Engine, database_url: str, tmp_path: Path) -> None:
    archive, manifest = backup_store(database_url, tmp_path / "site.tar")
    store_member = next(name for name in manifest.files if name.startswith("store."))
    with tarfile.open(archive) as tar:
        offset = tar.getmember(store_member).offset_data
    data = bytearray(archive.read_bytes())
    data[offset + 200] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(BackupError, match=rf"{archive}: {store_member} does not match"):
        verify_archive(archive, database_url)


def test_a_truncated_archive_is_named(
    filled: Engine, cli: CliRunner, database_url: str, target: str, tmp_path: Path
) -> None:
    archive, _ = backup_store(database_url, tmp_path / "site.tar.gz")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    checked = cli.invoke(app, ["backup", "--verify", str(archive)])
    assert checked.exit_code == 1
    assert "site.tar.gz" in checked.output
    assert "truncated" in checked.output
    restored = cli.invoke(app, ["restore", str(archive), "--database", target])
    assert restored.exit_code == 1
    assert "site.tar.gz" in restored.output
    assert not backend_for(make_engine(target).dialect.name).holds_data(target)


def test_restore_refuses_a_store_with_data_unless_replace(
    filled: Engine, database_url: str, tmp_path: Path
) -> None:
    archive, manifest = backup_store(database_url, tmp_path / "site.tar")
    add_paper(filled, "2403.00001")  # made after the backup: the replace must remove it
    with pytest.raises(BackupError, match="not empty; pass --replace"):
        restore_store(archive, database_url)
    assert counts(database_url)["papers"] == 6  # untouched
    filled.dispose()
    _, verified = restore_store(archive, database_url, replace=True)
    assert verified.ok
    assert counts(database_url) == manifest.tables


def test_verify_catches_a_tampered_table_count(
    filled: Engine, cli: CliRunner, database_url: str, tmp_path: Path
) -> None:
    archive, _ = backup_store(database_url, tmp_path / "site.tar.gz")
    tampered = rewrite_manifest(archive, lambda fields: fields["tables"].update(votes=3))
    checked = cli.invoke(app, ["backup", "--verify", str(tampered)])
    assert checked.exit_code == 1, checked.output
    assert "votes: manifest 3, found 2" in checked.output


def test_restore_refuses_a_newer_schema_and_another_engine(
    filled: Engine, database_url: str, target: str, tmp_path: Path
) -> None:
    archive, _ = backup_store(database_url, tmp_path / "site.tar.gz")
    newer = rewrite_manifest(archive, lambda fields: fields.update(revision="9999_future"))
    with pytest.raises(BackupError, match=r"tampered-site.tar.gz: its schema revision 9999_future"):
        restore_store(newer, target)
    other = rewrite_manifest(archive, lambda fields: fields.update(engine=OTHER_ENGINE))
    with pytest.raises(BackupError, match=f"holds a {OTHER_ENGINE} store"):
        restore_store(other, target)
    assert not backend_for(make_engine(target).dialect.name).holds_data(target)


def _saved_vectors(folder: Path) -> None:
    """A pointer and the generation it names, as search/ann.py leaves them, plus debris."""
    folder.mkdir()
    (folder / "all-MiniLM-L6-v2.json").write_bytes(orjson.dumps({"generation": "0123456789ab"}))
    for kind in ("usearch", "seqs.npy", "f16.npy"):
        (folder / f"all-MiniLM-L6-v2.0123456789ab.{kind}").write_bytes(kind.encode() * 100)
    (folder / "all-MiniLM-L6-v2.fedcba987654.usearch").write_bytes(b"a generation being written")
    (folder / "all-MiniLM-L6-v2.json.part-7").write_bytes(b"{}")


def _keyword_index(folder: Path) -> None:
    import tantivy

    from broadsheet.search.keyword_saved import _open

    folder.mkdir()
    index = _open(folder, create=True)
    writer = index.writer(heap_size=15_000_000, num_threads=1)
    writer.add_document(tantivy.Document(seq=1, length=2, terms="backup restor"))
    writer.commit()
    writer.wait_merging_threads()


@pytest.mark.skipif(ON_POSTGRES, reason="a database server's store keeps its indexes in itself")
def test_saved_indexes_and_key_travel_with_a_sqlite_store(
    filled: Engine, database_url: str, target: str, tmp_path: Path
) -> None:
    import tantivy

    store_file = Path(filled.url.database)
    _saved_vectors(Path(f"{store_file}.ann"))
    _keyword_index(Path(f"{store_file}.keywords"))
    Path(f"{store_file}.secret").write_text("the signing key")
    archive, manifest = backup_store(database_url, tmp_path / "site.tar")
    assert "ann/all-MiniLM-L6-v2.0123456789ab.f16.npy" in manifest.files
    assert "ann/all-MiniLM-L6-v2.json" in manifest.files
    assert not any("fedcba987654" in name or ".part-" in name for name in manifest.files)
    assert "keywords/meta.json" in manifest.files
    assert not any(name.endswith(".lock") for name in manifest.files)
    assert "store.secret" in manifest.files

    restore_store(archive, target)
    restored = Path(make_engine(target).url.database)
    pointer = Path(f"{restored}.ann/all-MiniLM-L6-v2.json")
    assert orjson.loads(pointer.read_bytes()) == {"generation": "0123456789ab"}
    assert Path(f"{restored}.ann/all-MiniLM-L6-v2.0123456789ab.usearch").read_bytes() == (
        b"usearch" * 100
    )
    assert tantivy.Index.open(f"{restored}.keywords").searcher().num_docs == 1
    assert Path(f"{restored}.secret").read_text() == "the signing key"
    assert Path(f"{restored}.secret").stat().st_mode & 0o777 == 0o600


@pytest.mark.skipif(ON_POSTGRES, reason="a database server's store keeps its indexes in itself")
def test_no_keyword_save_runs_while_its_folder_is_copied(tmp_path: Path) -> None:
    import tantivy

    from broadsheet.db.backup_sqlite import keyword_saves_held

    folder = tmp_path / "store.db.keywords"
    _keyword_index(folder)
    index = tantivy.Index.open(str(folder))
    with keyword_saves_held(folder), pytest.raises(ValueError, match="LockBusy"):
        index.writer(heap_size=15_000_000, num_threads=1)
    saving = index.writer(heap_size=15_000_000, num_threads=1)  # free again afterwards
    held = pytest.raises(BackupError, match="keyword index save has held its lock")
    with held, keyword_saves_held(folder, wait=0.5):
        pass
    saving.wait_merging_threads()


def test_verify_without_a_server_skips_only_a_database_server_archive(
    filled: Engine, database_url: str, tmp_path: Path
) -> None:
    archive, _ = backup_store(database_url, tmp_path / "site.tar")
    _, verified = verify_archive(archive, server_url=None)
    if ON_POSTGRES:
        assert not verified.ok
        assert "needs a postgresql server" in verified.skipped
    else:  # the archive itself is the throwaway copy
        assert verified.ok
        assert verified.counts["papers"] == 5
