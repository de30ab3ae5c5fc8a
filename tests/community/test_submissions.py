from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select

from broadsheet.community.accounts import create_member
from broadsheet.community.submissions import ArxivUnavailable, SubmissionError, submit_paper
from broadsheet.config import Settings
from broadsheet.db.schema import feed_entries, papers
from fake_arxiv import FakeArxiv, fake_arxiv


@pytest.fixture
def arxiv() -> Iterator[FakeArxiv]:
    with fake_arxiv() as fake:
        yield fake


def _settings(arxiv: FakeArxiv) -> Settings:
    return Settings(arxiv_api_url=arxiv.url, arxiv_api_delay=0.0, arxiv_api_retries=1)


def _count(store: Engine, table) -> int:
    with store.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


@pytest.mark.parametrize(
    "text",
    [
        "2401.00123",
        "arXiv:2401.00123v1",
        "https://arxiv.org/abs/2401.00123",
        "arxiv.org/pdf/2401.00123v1.pdf",
    ],
)
def test_a_new_paper_is_fetched_and_put_on_todays_feed(
    papers_store: Engine, arxiv: FakeArxiv, text: str
) -> None:
    ada = create_member(papers_store, "ada", "long enough password")
    submission = submit_paper(papers_store, ada, text, settings=_settings(arxiv))
    assert submission.paper_id == "2401.00123"
    assert submission.fetched
    assert submission.placed_on == datetime.now(UTC).date()
    assert arxiv.requests[-1]["id_list"] == "2401.00123"
    with papers_store.connect() as connection:
        paper = connection.execute(select(papers).where(papers.c.id == "2401.00123")).one()
        entry = connection.execute(
            select(feed_entries).where(feed_entries.c.paper_id == "2401.00123")
        ).one()
    assert paper.title == "Gradient Noise Is All You Need"
    assert (entry.source, entry.submitted_by, entry.day) == (
        "submission",
        "ada",
        submission.placed_on,
    )


def test_a_stored_paper_is_linked_not_fetched_or_duplicated(
    papers_store: Engine, arxiv: FakeArxiv
) -> None:
    ada = create_member(papers_store, "ada", "long enough password")
    before = (_count(papers_store, papers), _count(papers_store, feed_entries))
    submission = submit_paper(papers_store, ada, "2401.00001v3", settings=_settings(arxiv))
    assert (submission.paper_id, submission.fetched, submission.placed_on) == (
        "2401.00001",
        False,
        None,  # already on the feed of its day
    )
    assert arxiv.requests == []
    assert (_count(papers_store, papers), _count(papers_store, feed_entries)) == before


def test_submitting_twice_stores_one_paper_and_one_entry(
    papers_store: Engine, arxiv: FakeArxiv
) -> None:
    ada = create_member(papers_store, "ada", "long enough password")
    submit_paper(papers_store, ada, "2401.00123", settings=_settings(arxiv))
    again = submit_paper(
        papers_store, ada, "https://arxiv.org/abs/2401.00123", settings=_settings(arxiv)
    )
    assert not again.fetched
    assert len(arxiv.requests) == 1
    with papers_store.connect() as connection:
        entries = connection.execute(
            select(func.count()).where(feed_entries.c.paper_id == "2401.00123")
        ).scalar_one()
    assert entries == 1


def test_bad_ids_unknown_papers_and_arxiv_failures_are_explained(
    papers_store: Engine, arxiv: FakeArxiv
) -> None:
    ada = create_member(papers_store, "ada", "long enough password")
    before = _count(papers_store, papers)
    with pytest.raises(SubmissionError, match="not an arXiv id"):
        submit_paper(papers_store, ada, "hello world", settings=_settings(arxiv))
    with pytest.raises(SubmissionError, match=r"arXiv has no paper 2402\.99999"):
        submit_paper(papers_store, ada, "2402.99999", settings=_settings(arxiv))
    arxiv.fail_with = 503
    with pytest.raises(ArxivUnavailable, match="arXiv is busy just now; try again"):
        submit_paper(papers_store, ada, "2401.01234", settings=_settings(arxiv))
    assert len(arxiv.requests) == 2  # a person is waiting: one try, no retry
    assert _count(papers_store, papers) == before
