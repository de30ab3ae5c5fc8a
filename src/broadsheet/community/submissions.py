"""Members submit papers by arXiv id or URL; a paper already stored is linked, not fetched."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import httpx
from sqlalchemy import Engine, select

from broadsheet.community import ratelimit
from broadsheet.community.accounts import Member
from broadsheet.config import Settings
from broadsheet.db.bulk import insert_ignoring_conflicts
from broadsheet.db.schema import feed_entries, papers
from broadsheet.db.version import bump_version
from broadsheet.ingest.harvest import USER_AGENT
from broadsheet.papers.ids import InvalidArxivId, parse_arxiv_id
from broadsheet.papers.record import Paper
from broadsheet.papers.repository import upsert_papers
from broadsheet.sources.arxiv_api import ArxivFeedError, deadline_client, parse_feed

SOURCE = "submission"
# A person is waiting on the page: one try, all of it within this many seconds. The harvest
# keeps its own patient timeout, retries and back-off.
LOOKUP_DEADLINE = 8.0
UNREACHABLE = "arXiv could not be reached just now; try again in a few minutes."
TOO_SLOW = "arXiv did not answer in time; try again in a few minutes."
BUSY = "arXiv is busy just now; try again in a few minutes."
UNREADABLE = "arXiv's answer could not be read; try again later."
BUSY_STATUSES = frozenset({429, 500, 502, 503, 504})


class SubmissionError(ValueError):
    pass


class ArxivUnavailable(SubmissionError):
    """arXiv could not answer the lookup now; the message says so in plain words."""


def lookup_on_arxiv(
    ids: list[str], *, settings: Settings, client: httpx.Client | None = None
) -> list[Paper]:
    """The papers with these ids from the arXiv API, in one try within ``LOOKUP_DEADLINE``.

    Failures become ArxivUnavailable with a plain message: never an address or an errno.
    """
    own_client = client is None
    client = client or deadline_client(LOOKUP_DEADLINE, {"User-Agent": USER_AGENT})
    params = {"id_list": ",".join(ids), "max_results": str(len(ids))}
    try:
        response = client.get(settings.arxiv_api_url, params=params)
    except httpx.TimeoutException as exc:
        raise ArxivUnavailable(TOO_SLOW) from exc
    except httpx.HTTPError as exc:
        raise ArxivUnavailable(UNREACHABLE) from exc
    finally:
        if own_client:
            client.close()
    if response.status_code in BUSY_STATUSES:
        raise ArxivUnavailable(BUSY)
    if response.status_code >= 400:
        raise ArxivUnavailable(UNREACHABLE)
    try:
        return parse_feed(response.content, category="submission").papers
    except ArxivFeedError as exc:
        raise ArxivUnavailable(UNREADABLE) from exc


@dataclass(frozen=True, slots=True)
class Submission:
    paper_id: str
    fetched: bool  # fetched from arXiv now (False: it was already stored)
    placed_on: date | None  # the feed day it was put on (None: it was on the feed already)


def _today() -> date:
    return datetime.now(UTC).date()


def submit_paper(
    engine: Engine,
    member: Member,
    text: str,
    *,
    settings: Settings,
    client: httpx.Client | None = None,
    fetch: Callable[..., list[Paper]] = lookup_on_arxiv,
) -> Submission:
    """Put the paper named by ``text`` (arXiv id or URL) on today's feed.

    A stored paper is only linked; an unknown one is fetched through the arXiv importer.
    A paper already on the feed stays on its day.
    """
    try:
        arxiv_id = parse_arxiv_id(text)
    except InvalidArxivId as exc:
        raise SubmissionError(
            f"{text.strip()!r} is not an arXiv id or URL (e.g. 2401.00123 or "
            "https://arxiv.org/abs/2401.00123)."
        ) from exc
    with engine.begin() as connection:  # counted even if arXiv then fails: it costs a request
        ratelimit.hit(connection, ratelimit.SUBMISSIONS, f"member:{member.id}")
        stored = connection.execute(
            select(papers.c.hidden_at).where(papers.c.id == arxiv_id.id)
        ).first()
    if stored is not None and stored.hidden_at is not None:
        raise SubmissionError(f"arXiv:{arxiv_id.id} was hidden by an admin.")
    fetched = None
    if stored is None:
        found = fetch([arxiv_id.id], settings=settings, client=client)
        fetched = next((p for p in found if p.id == arxiv_id.id), None)
        if fetched is None:
            raise SubmissionError(f"arXiv has no paper {arxiv_id.id}.")
        fetched.feed = None  # placed below, as a submission
    today = _today()
    with engine.begin() as connection:
        if fetched is not None:
            upsert_papers(connection, [fetched])
        on_feed = connection.execute(
            select(feed_entries.c.day).where(feed_entries.c.paper_id == arxiv_id.id).limit(1)
        ).first()
        placed_on = None
        if on_feed is None:
            statement = insert_ignoring_conflicts(connection, feed_entries, ["paper_id", "day"])
            connection.execute(
                statement.values(
                    paper_id=arxiv_id.id,
                    day=today,
                    source=SOURCE,
                    submitted_by=member.username,
                    created_at=datetime.now(UTC).replace(tzinfo=None),
                )
            )
            placed_on = today
            bump_version(connection)
    return Submission(arxiv_id.id, fetched=fetched is not None, placed_on=placed_on)


__all__ = ["ArxivUnavailable", "Submission", "SubmissionError", "lookup_on_arxiv", "submit_paper"]
