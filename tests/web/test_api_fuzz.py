"""Schemathesis against the OpenAPI schema: no generated request to any /api route ends in a 500.

The store holds a few real papers (imported and embedded, so search runs hybrid and similar
papers have vectors) and a few odd ones written past the importer: control characters, the
highlight marks, LIKE wildcards in a category, a hidden paper, a long abstract and feed days
at the calendar's ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance
from sqlalchemy import update

from broadsheet.community.accounts import create_member
from broadsheet.community.api_tokens import create_token
from broadsheet.config import Settings
from broadsheet.db.engine import make_engine, migrate
from broadsheet.db.schema import papers
from broadsheet.ingest.runner import import_file
from broadsheet.papers.record import FeedPlacement, Organisation, Paper
from broadsheet.papers.repository import prepare_fresh_row, upsert_papers
from broadsheet.search.embed import load_embedder
from broadsheet.search.indexing import index_papers
from broadsheet.web.app import create_app
from databases import ON_POSTGRES, drop_database, new_database_url

TOPICS = Path(__file__).parents[1] / "fixtures" / "daily_papers" / "topics.json"
ODD = "\x00\x01\x02\x03\x0b\x1f\ufffe\uffff"
# Stored as is; PostgreSQL's text cannot hold NUL at all, so only a SQLite store can have one.
STORED_ODD = ODD.replace("\x00", "") if ON_POSTGRES else ODD
HUGE_COUNT = 2**31 - 1 if ON_POSTGRES else 2**40  # the most each engine's integer column holds


def odd_papers() -> list[Paper]:
    org = Organisation("odd%_org", "Odd_%Org", "Odd \x01 Org")
    return [
        Paper(
            id="2402.00001",
            title_raw="Odd characters in pooling",
            abstract_raw="x",
            source="test",
            categories=["cs.%", "cs._G"],
            organisation=org,
            published_at=datetime(2024, 2, 1),
            upvotes=HUGE_COUNT,
            feed=FeedPlacement(date.max, "test"),
        ),
        Paper(
            id="odd:\x01/../id%00",
            title_raw="A stored id with odd characters",
            abstract_raw="Pooling and attention. " * 20_000,
            source="test",
            feed=FeedPlacement(date.min, "test"),
        ),
        Paper(
            id="2402.00003",
            title_raw="Hidden pooling paper",
            abstract_raw="Attention pooling, hidden by an admin.",
            source="test",
            feed=FeedPlacement(date(2024, 1, 3), "test"),
        ),
    ]


def make_app(url: str) -> FastAPI:
    return create_app(Settings(database_url=url, secret_key="fuzz-secret"))


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    url = new_database_url(tmp_path_factory.mktemp("fuzz"), migrated=True)
    engine = make_engine(url)
    migrate(engine)
    import_file(engine, TOPICS)
    batch = odd_papers()
    batch[0].prepared = {
        **prepare_fresh_row(batch[0]),
        "title": f"Odd{STORED_ODD} characters in \x02pooling\x03",
        "abstract": f"Pooling{STORED_ODD} with \x02marks\x03 and {STORED_ODD} controls.",
        "authors": ["Ada\x01\x02\x03\ufffeLovelace"],
    }
    with engine.begin() as connection:
        upsert_papers(connection, batch)
        connection.execute(
            update(papers).where(papers.c.id == "2402.00003").values(hidden_at=datetime(2024, 2, 2))
        )
    index_papers(engine, load_embedder())
    member = create_member(engine, "fuzzer", "long enough password")
    _, app_token = create_token(engine, member, "fuzz")
    engine.dispose()
    app = make_app(url)
    app.state.fuzz_token = app_token  # the member API is fuzzed as a member
    yield app
    app.state.engine.dispose()
    drop_database(url)


# Values that reach the odd papers, besides the generated ones (random text rarely does).
EXAMPLES = {
    "paper_id": ["2402.00001", "odd:\x01/../id%00", "2402.00003", "arXiv:2401.00001v2"],
    "q": ["pooling attention", "marks controls", "\x02pooling\x03"],
    "category": ["cs.%", "cs._G", "%", "cs"],
    "organisation": ["odd%_org"],
    "date": ["2024-01-03", "2199-12-31", "1800-01-01"],
}


def with_examples(document: dict) -> dict:
    """The OpenAPI ``document`` with EXAMPLES on the parameters of those names."""
    for operation in (op for path in document["paths"].values() for op in path.values()):
        for parameter in operation.get("parameters", []):
            values = EXAMPLES.get(parameter["name"], [])
            parameter["examples"] = {f"odd{n}": {"value": v} for n, v in enumerate(values)}
    return document


# The schema as the app publishes it (an app over an empty in-memory store serves the same one);
# the requests go to the app over the filled store.
schema = schemathesis.openapi.from_dict(with_examples(make_app("sqlite://").openapi()))


@schema.parametrize()
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_no_request_to_the_api_ends_in_a_server_error(
    app: FastAPI, case: schemathesis.Case
) -> None:
    headers = None
    if case.path.startswith("/api/me"):
        headers = {"Authorization": f"Bearer {app.state.fuzz_token}"}
    case.call_and_validate(
        app=app, headers=headers, checks=[not_a_server_error, response_schema_conformance]
    )
