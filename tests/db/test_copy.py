"""`broadsheet db copy`: a whole store from SQLite to PostgreSQL and back, one snapshot of the
source, resumable, counted, whole in a SQLite target's own file, and plain about a filled target."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, func, select, update

from broadsheet.community.accounts import create_member
from broadsheet.community.comments import add_comment
from broadsheet.community.votes import set_vote
from broadsheet.db.copy import TargetNotEmpty, copied_tables, copy_store
from broadsheet.db.engine import make_engine, migrate
from broadsheet.db.schema import comments, papers, votes
from broadsheet.ingest.runner import import_file
from broadsheet.search.hybrid import SearchRequest, search_papers
from databases import drop_database, new_postgres_url
from keyword_checks import assert_keyword_index_whole

TOPICS = Path(__file__).parents[1] / "fixtures" / "daily_papers" / "topics.json"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url = new_postgres_url()
    yield url
    drop_database(url)


def _filled_sqlite(folder: Path) -> str:
    url = f"sqlite:///{folder / 'source.db'}"
    engine = make_engine(url)
    migrate(engine)
    import_file(engine, TOPICS)
    member = create_member(engine, "ada", "long enough password")
    first, second = engine.connect().execute(select(papers.c.id).limit(2)).scalars().all()
    set_vote(engine, member, first, True)
    add_comment(engine, member, second, "Worth a *look*")
    engine.dispose()
    return url


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in copied_tables()
        }


def test_a_store_goes_to_postgresql_and_back_with_every_row(
    tmp_path: Path, postgres_url: str
) -> None:
    source_url = _filled_sqlite(tmp_path)
    summary = copy_store(source_url, postgres_url, batch_rows=7)
    source, target = make_engine(source_url), make_engine(postgres_url)
    assert _counts(target) == _counts(source)
    assert summary.copied == sum(_counts(source).values())

    found = search_papers(target, SearchRequest("diffusion"))
    assert found.hits, "the keyword index is rebuilt on the target"
    with target.connect() as connection:
        assert_keyword_index_whole(connection)
    member = create_member(target, "grace", "long enough password")  # ids are not reused
    paper = target.connect().execute(select(papers.c.id).limit(1)).scalar_one()
    add_comment(target, member, paper, "A new comment on the copy")
    assert _counts(target)["comments"] == _counts(source)["comments"] + 1

    back_url = f"sqlite:///{tmp_path / 'back.db'}"
    copy_store(postgres_url, back_url)
    back = make_engine(back_url)
    assert _counts(back) == _counts(target)
    assert search_papers(back, SearchRequest("diffusion")).hits
    with back.connect() as connection:
        assert_keyword_index_whole(connection)
    for engine in (source, target, back):
        engine.dispose()


def test_a_stopped_copy_resumes_where_it_stopped(tmp_path: Path, postgres_url: str) -> None:
    source_url = _filled_sqlite(tmp_path)

    class Stopped(Exception):
        pass

    def stop_in_papers(table: str, done: int, total: int) -> None:
        if table == "papers" and done >= 10:
            raise Stopped

    with pytest.raises(Stopped):
        copy_store(source_url, postgres_url, batch_rows=5, progress=stop_in_papers)
    target = make_engine(postgres_url)
    with target.connect() as connection:
        assert connection.execute(select(func.count()).select_from(papers)).scalar_one() == 10
    with pytest.raises(TargetNotEmpty):  # a filled target is never added to unasked
        copy_store(source_url, postgres_url, batch_rows=5)
    summary = copy_store(source_url, postgres_url, batch_rows=5, existing="resume")
    source = make_engine(source_url)
    assert _counts(target) == _counts(source)
    resumed = {entry.name: entry.copied for entry in summary.tables}
    assert resumed["papers"] == _counts(source)["papers"] - 10, "copied rows are not read twice"
    with target.connect() as connection:
        assert connection.execute(select(func.count()).select_from(comments)).scalar_one() == 1
    source.dispose()
    target.dispose()


def test_the_cli_copies_and_reports_counts(tmp_path: Path, postgres_url: str, cli) -> None:
    from broadsheet.cli import app

    source_url = _filled_sqlite(tmp_path)
    result = cli.invoke(app, ["db", "copy", source_url, postgres_url])
    assert result.exit_code == 0, result.output
    assert "every table's count matches" in result.output
    assert "papers" in result.output


def test_a_copy_into_sqlite_is_whole_in_the_db_file_alone(tmp_path: Path) -> None:
    """A backup made with ``db copy … sqlite:///backup.db`` is the ``.db`` file: its ``-wal``
    beside it must hold nothing the file lacks."""
    source_url = _filled_sqlite(tmp_path)
    backup = tmp_path / "backup.db"
    copy_store(source_url, f"sqlite:///{backup}")
    alone = tmp_path / "alone" / "backup.db"
    alone.parent.mkdir()
    shutil.copyfile(backup, alone)  # what copying or uploading the file alone carries
    source, copied = make_engine(source_url), make_engine(f"sqlite:///{alone}")
    assert _counts(copied) == _counts(source)
    source.dispose()
    copied.dispose()


def test_a_copy_of_a_store_taking_votes_is_one_snapshot(
    tmp_path: Path, store: Engine, database_url: str
) -> None:
    """Votes go on in another thread all through the copy: each paper's counter in the copy
    still equals its vote rows there (the papers and the votes are read at one moment)."""
    import_file(store, TOPICS)
    voters = [create_member(store, f"voter{n}", "long enough password") for n in range(4)]
    with store.connect() as connection:
        ids = connection.execute(select(papers.c.id).order_by(papers.c.id).limit(8)).scalars()
        ids = ids.all()
    stop, wanted, voted, failed = (
        threading.Event(),
        threading.Semaphore(0),
        threading.Semaphore(0),
        [],
    )
    cast = 0

    def keep_voting() -> None:
        """Votes between the copy's batches, one each time (the rate limit allows no more)."""
        nonlocal cast
        try:
            while not stop.is_set():
                if wanted.acquire(timeout=0.05):
                    set_vote(store, voters[cast % len(voters)], ids[cast % len(ids)])  # toggles
                    cast += 1
                    voted.release()
        except Exception as exc:  # reported by the test below
            failed.append(exc)
            voted.release()

    def after_a_vote(table: str, done: int, total: int) -> None:
        wanted.release()
        assert voted.acquire(timeout=10), "the voter stopped"

    voter = threading.Thread(target=keep_voting)
    voter.start()
    try:
        target_url = f"sqlite:///{tmp_path / 'copy.db'}"
        copy_store(database_url, target_url, batch_rows=2, progress=after_a_vote)
    finally:
        stop.set()
        voter.join(30)
    assert not failed, failed
    target = make_engine(target_url)
    with target.connect() as connection:
        counted = dict(connection.execute(select(papers.c.id, papers.c.member_votes)).all())
        rows = dict(
            connection.execute(
                select(votes.c.paper_id, func.count()).group_by(votes.c.paper_id)
            ).all()
        )
    assert cast > 20, "votes were cast all through the copy"
    assert {paper: rows.get(paper, 0) for paper in counted} == counted
    target.dispose()


def test_a_filled_target_is_refused_and_replace_makes_it_the_source_again(
    tmp_path: Path, postgres_url: str
) -> None:
    source_url = _filled_sqlite(tmp_path)
    copy_store(source_url, postgres_url)
    source, target = make_engine(source_url), make_engine(postgres_url)
    with source.begin() as connection:  # the source moves on: a comment goes, a title changes
        connection.execute(delete(comments))
        first = connection.execute(select(papers.c.id).order_by(papers.c.id)).scalars().first()
        connection.execute(update(papers).where(papers.c.id == first).values(title="Renamed"))
    before = _counts(target)
    with pytest.raises(TargetNotEmpty, match="holds rows already"):
        copy_store(source_url, postgres_url)
    assert _counts(target) == before, "a refused copy changes nothing"

    summary = copy_store(source_url, postgres_url, existing="replace")
    assert summary.removed == sum(before.values())
    assert _counts(target) == _counts(source)
    with target.connect() as connection:
        title = connection.execute(select(papers.c.title).where(papers.c.id == first))
        assert title.scalar_one() == "Renamed"
    assert search_papers(target, SearchRequest("diffusion")).hits
    with target.connect() as connection:
        assert_keyword_index_whole(connection)
    source.dispose()
    target.dispose()


def test_the_cli_says_what_it_does_with_a_filled_target(
    tmp_path: Path, postgres_url: str, cli
) -> None:
    from broadsheet.cli import app

    source_url = _filled_sqlite(tmp_path)
    first = cli.invoke(app, ["db", "copy", source_url, postgres_url])
    assert first.exit_code == 0, first.output
    assert "the target was empty" in first.output
    again = cli.invoke(app, ["db", "copy", source_url, postgres_url])
    assert again.exit_code == 1
    assert "not empty" in again.output and "--replace" in again.output
    replaced = cli.invoke(app, ["db", "copy", "--replace", source_url, postgres_url])
    assert replaced.exit_code == 0, replaced.output
    assert "emptied the target first" in replaced.output
    both = cli.invoke(app, ["db", "copy", "--replace", "--resume", source_url, postgres_url])
    assert both.exit_code != 0
