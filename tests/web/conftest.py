"""A web app over a test store, driven through Starlette's test client."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from broadsheet.community import mail_queue
from broadsheet.config import Settings
from broadsheet.ingest.runner import import_file
from broadsheet.web.app import create_app
from smtp_sink import SmtpSink


class MailingClient(TestClient):
    """A test client that, like a reader who looks at their inbox after the page, sees the
    mail a request sends after its answer: each request returns once that mail is done."""

    def request(self, *args, **kwargs):  # type: ignore[override]
        response = super().request(*args, **kwargs)
        assert mail_queue.QUEUE.wait(30), "mail after the answer still not done after 30 s"
        return response


def make_client(database_url: str, smtp: SmtpSink | None = None) -> TestClient:
    settings = Settings(database_url=database_url, secret_key="test-secret", **mail_settings(smtp))
    return MailingClient(create_app(settings))


def mail_settings(smtp: SmtpSink | None) -> dict[str, object]:
    if smtp is None:
        return {}
    return {"smtp_host": smtp.host, "smtp_port": smtp.port, "base_url": "http://testserver"}


@pytest.fixture
def client(store: Engine, database_url: str, smtp: SmtpSink) -> Iterator[TestClient]:
    with make_client(database_url, smtp) as test_client:
        yield test_client


@pytest.fixture
def no_cooldown(store: Engine, database_url: str, smtp: SmtpSink) -> Iterator[TestClient]:
    """A client whose confirmation mails have no cool-down, so only the limits hold them."""
    settings = Settings(
        database_url=database_url, secret_key="test-secret", confirmation_cooldown_minutes=0,
        **mail_settings(smtp),
    )  # fmt: skip
    with MailingClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def daily_client(
    store: Engine, database_url: str, daily_papers_file, smtp: SmtpSink
) -> Iterator[TestClient]:
    import_file(store, daily_papers_file)
    with make_client(database_url, smtp) as test_client:
        yield test_client


def form_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)
