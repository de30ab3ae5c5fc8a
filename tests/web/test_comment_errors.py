"""A refused comment comes back on its form, next to the field, with the typed text kept."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from broadsheet.community.comments import MAX_COMMENT
from broadsheet.config import Settings
from broadsheet.db.schema import comments
from broadsheet.papers.repository import upsert_papers
from broadsheet.web.app import create_app
from community.conftest import make_paper
from web.conftest import form_token
from web.test_community import sign_up

PAPER = "2401.00001"


@pytest.fixture
def site(store: Engine, database_url: str) -> Iterator[TestClient]:
    with store.begin() as connection:
        upsert_papers(connection, [make_paper(PAPER)])
    settings = Settings(database_url=database_url, secret_key="test-secret")
    with TestClient(create_app(settings)) as client:
        sign_up(client, "ada")
        yield client


def htmx_comment(site: TestClient, body: str) -> httpx.Response:
    """The comment form's post as htmx sends it."""
    token = form_token(site.get(f"/papers/{PAPER}").text)
    return site.post(
        f"/papers/{PAPER}/comments",
        data={"body": body, "csrf_token": token},
        headers={"HX-Request": "true"},
    )


def stored_comments(site: TestClient) -> int:
    with site.app.state.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(comments)).scalar_one()


def textarea(form: str) -> str:
    match = re.search(r"<textarea[^>]*>(.*?)</textarea>", form, re.S)
    assert match, "no textarea in the answer"
    return match.group(0)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("   \n  ", "Comment text is empty: a comment needs some text."),
        ("x" * (MAX_COMMENT + 1), f"at most {MAX_COMMENT:,} characters"),
    ],
)
def test_a_refused_htmx_comment_comes_back_on_its_form(
    site: TestClient, body: str, why: str
) -> None:
    refused = htmx_comment(site, body)
    assert refused.status_code == 422 and "text/html" in refused.headers["content-type"]
    # htmx puts the answer in place of the form, not at the end of the comment list
    assert refused.headers["HX-Retarget"] == "#comment-form"
    assert refused.headers["HX-Reswap"] == "outerHTML"
    assert refused.text.lstrip().startswith("<form") and 'id="comment-form"' in refused.text
    alert = re.search(
        r'<p[^>]*id="comment-body-error"[^>]*role="alert"[^>]*>(.*?)</p>', refused.text
    )
    assert alert and why in html.unescape(alert.group(1))
    field = textarea(refused.text)
    assert 'aria-invalid="true"' in field and 'aria-describedby="comment-body-error"' in field
    # the text as typed (HTML drops one newline right after the tag, so the form adds one)
    typed = field.split(">", 1)[1].removeprefix("\n").removesuffix("</textarea>")
    assert html.unescape(typed) == body
    assert 'name="csrf_token"' in refused.text and "hx-post=" in refused.text  # it posts again
    assert stored_comments(site) == 0


def test_the_paper_page_has_the_same_form_without_an_error(site: TestClient) -> None:
    page = site.get(f"/papers/{PAPER}").text
    assert 'id="comment-form"' in page and 'id="comment-body-error"' not in page
    assert "aria-invalid" not in textarea(page)
    added = htmx_comment(site, "A fine comment")
    assert added.status_code == 200 and "HX-Retarget" not in added.headers
    assert '<article class="comment' in added.text and stored_comments(site) == 1
