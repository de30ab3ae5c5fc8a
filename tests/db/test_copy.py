"""`broadsheet db copy`: a whole store from SQLite to PostgreSQL and back, resumable, counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from broadsheet.community.accounts import create_member
from broadsheet.community.comments import add_comment
from broadsheet.community.votes import set_vote
from broadsheet.db.copy import copied_tables, copy_store
from broadsheet.db.engine import make_engine, migrate
from broadsheet.db.schema import comments, papers
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
    summary = copy_store(source_url, postgres_url, batch_rows=5)
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
