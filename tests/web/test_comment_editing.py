"""Members edit and delete their own comments over HTTP; admins may delete any."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from broadsheet.community import ratelimit
from broadsheet.community.accounts import create_member
from broadsheet.community.comments import MAX_COMMENT
from broadsheet.config import Settings
from broadsheet.db.schema import comments, papers
from broadsheet.papers.repository import upsert_papers
from broadsheet.web.app import create_app
from broadsheet.web.format import full_datetime, iso_utc
from community.conftest import make_paper
from web.conftest import form_token
from web.test_community import PASSWORD, sign_in, sign_up

PAPER = "2401.00001"


@pytest.fixture
def site(store: Engine, database_url: str) -> Iterator[TestClient]:
    with store.begin() as connection:
        upsert_papers(connection, [make_paper(PAPER), make_paper("2401.00002")])
    settings = Settings(database_url=database_url, secret_key="test-secret")
    with TestClient(create_app(settings)) as client:
        yield client


def post_comment(site: TestClient, body: str) -> int:
    token = form_token(site.get(f"/papers/{PAPER}").text)
    posted = site.post(
        f"/papers/{PAPER}/comments",
        data={"body": body, "csrf_token": token},
        follow_redirects=False,
    )
    assert posted.status_code == 303
    return int(posted.headers["location"].rsplit("#comment-", 1)[1])


def edit(site: TestClient, comment_id: int, body: str) -> httpx.Response:
    token = form_token(site.get(f"/papers/{PAPER}").text)
    return site.post(
        f"/comments/{comment_id}/edit",
        data={"body": body, "csrf_token": token},
        follow_redirects=False,
    )


def delete(site: TestClient, comment_id: int) -> httpx.Response:
    token = form_token(site.get(f"/papers/{PAPER}").text)
    return site.post(
        f"/comments/{comment_id}/delete", data={"csrf_token": token}, follow_redirects=False
    )


def stored(site: TestClient, comment_id: int):
    with site.app.state.engine.connect() as connection:
        return connection.execute(select(comments).where(comments.c.id == comment_id)).first()


def comment_count(site: TestClient) -> int:
    with site.app.state.engine.connect() as connection:
        return connection.execute(
            select(papers.c.comment_count).where(papers.c.id == PAPER)
        ).scalar_one()


def is_error_page(response: httpx.Response, status: int) -> bool:
    """An HTML page in the site's layout, not JSON and not a traceback."""
    return (
        response.status_code == status
        and response.headers["content-type"].startswith("text/html")
        and 'role="alert"' in response.text
        and 'action="/search"' in response.text
    )


@pytest.mark.parametrize(
    ("moment", "shown", "iso"),
    [
        (datetime(2026, 12, 2, 15, 4, 5, 123), "2 Dec 2026, 15:04 UTC", "2026-12-02T15:04:05Z"),
        (datetime(2019, 1, 9, 3, 0), "9 Jan 2019, 03:00 UTC", "2019-01-09T03:00:00Z"),
        (
            datetime(2026, 12, 2, 16, 4, tzinfo=timezone(timedelta(hours=1))),
            "2 Dec 2026, 15:04 UTC",
            "2026-12-02T15:04:00Z",
        ),
    ],
)
def test_full_dates_say_the_year_and_the_zone(moment: datetime, shown: str, iso: str) -> None:
    assert full_datetime(moment) == shown
    assert iso_utc(moment) == iso
    assert full_datetime(None) == iso_utc(None) == ""


def test_comments_show_a_full_date_in_a_time_element(site: TestClient) -> None:
    sign_up(site, "ada")
    comment_id = post_comment(site, "hello")
    created = stored(site, comment_id).created_at
    article = _article(site.get(f"/papers/{PAPER}").text, comment_id)
    shown = f"{created.day} {created:%b %Y, %H:%M} UTC"
    assert f'<time datetime="{created:%Y-%m-%dT%H:%M:%S}Z">{shown}</time>' in article
    assert "edited" not in article


def _article(page: str, comment_id: int) -> str:
    match = re.search(rf'<article[^>]*id="comment-{comment_id}".*?</article>', page, re.S)
    assert match, f"no comment {comment_id} on the page"
    return match.group(0)


def test_the_author_edits_through_the_edit_page(site: TestClient) -> None:
    sign_up(site, "ada")
    comment_id = post_comment(site, "First *draft*")
    article = _article(site.get(f"/papers/{PAPER}").text, comment_id)
    assert f'href="/comments/{comment_id}/edit"' in article
    assert f'action="/comments/{comment_id}/delete"' in article

    page = site.get(f"/comments/{comment_id}/edit")
    assert page.status_code == 200 and "<h1>" in page.text
    assert "First *draft*</textarea>" in page.text
    saved = edit(site, comment_id, "Second **draft**")
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/papers/{PAPER}#comment-{comment_id}"
    article = _article(site.get(f"/papers/{PAPER}").text, comment_id)
    assert "<strong>draft</strong>" in article and "First" not in article
    edited_at = stored(site, comment_id).edited_at
    assert edited_at is not None
    assert f'edited <time datetime="{edited_at:%Y-%m-%dT%H:%M:%S}Z">' in article


def test_editing_to_an_empty_body_names_the_field(site: TestClient) -> None:
    sign_up(site, "ada")
    comment_id = post_comment(site, "kept")
    refused = edit(site, comment_id, "   ")
    assert refused.status_code == 422 and "text/html" in refused.headers["content-type"]
    assert "Comment text is empty" in refused.text
    assert 'aria-invalid="true"' in refused.text and "<textarea" in refused.text
    assert stored(site, comment_id).body == "kept"


def test_editing_to_an_over_long_body_is_refused_and_keeps_the_draft(site: TestClient) -> None:
    sign_up(site, "ada")
    comment_id = post_comment(site, "kept")
    refused = edit(site, comment_id, "x" * (MAX_COMMENT + 1))
    assert refused.status_code == 422 and f"at most {MAX_COMMENT:,} characters" in refused.text
    assert "x" * (MAX_COMMENT + 1) + "</textarea>" in refused.text  # nothing typed is lost
    far_too_long = edit(site, comment_id, "x" * 30_000)
    assert far_too_long.status_code == 422 and "body" in far_too_long.text
    assert stored(site, comment_id).body == "kept"


def test_edits_are_rate_limited_as_posting_is(site: TestClient) -> None:
    sign_up(site, "ada")
    comment_id = post_comment(site, "first")
    statuses = [edit(site, comment_id, f"edit {i}").status_code for i in range(10)]
    assert statuses == [303] * (ratelimit.COMMENTS.hits - 1) + [429]
    assert stored(site, comment_id).body == f"edit {ratelimit.COMMENTS.hits - 2}"


def test_another_member_gets_a_403_page(site: TestClient) -> None:
    sign_up(site, "ada")
    comment_id = post_comment(site, "mine")
    site.cookies.clear()
    sign_up(site, "bob")
    article = _article(site.get(f"/papers/{PAPER}").text, comment_id)
    assert "/edit" not in article and "/delete" not in article
    assert is_error_page(site.get(f"/comments/{comment_id}/edit"), 403)
    assert is_error_page(edit(site, comment_id, "theirs now"), 403)
    assert is_error_page(delete(site, comment_id), 403)
    assert stored(site, comment_id).body == "mine"
    assert comment_count(site) == 1


def test_a_visitor_is_sent_to_sign_in(site: TestClient) -> None:
    sign_up(site, "ada")
    comment_id = post_comment(site, "mine")
    site.cookies.clear()
    page = site.get(f"/comments/{comment_id}/edit", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/signin?next=%2Fcomments%2F")
    for response in (edit(site, comment_id, "anonymous"), delete(site, comment_id)):
        assert response.status_code == 303
        assert response.headers["location"].startswith("/signin?next=")
    assert stored(site, comment_id).body == "mine"


def test_the_author_deletes_and_the_counts_follow(site: TestClient) -> None:
    sign_up(site, "ada")
    post_comment(site, "stays")
    comment_id = post_comment(site, "goes")
    assert 'aria-label="2 comments"' in site.get("/?date=2024-01-10").text
    deleted = delete(site, comment_id)
    assert deleted.status_code == 303
    assert deleted.headers["location"] == f"/papers/{PAPER}#comments"
    assert stored(site, comment_id) is None
    assert comment_count(site) == 1
    assert "goes" not in site.get(f"/papers/{PAPER}").text
    site.cookies.clear()  # visitors get the cached feed: it must show the new count
    assert 'aria-label="1 comment"' in site.get("/?date=2024-01-10").text


def test_a_double_clicked_delete_answers_404_the_second_time(site: TestClient) -> None:
    sign_up(site, "ada")
    post_comment(site, "stays")
    comment_id = post_comment(site, "goes")
    token = form_token(site.get(f"/papers/{PAPER}").text)
    first, second = (
        site.post(
            f"/comments/{comment_id}/delete", data={"csrf_token": token}, follow_redirects=False
        )
        for _ in range(2)
    )
    assert first.status_code == 303
    assert is_error_page(second, 404) and "No comment" in second.text
    assert comment_count(site) == 1
    assert is_error_page(site.get(f"/comments/{comment_id}/edit"), 404)
    assert is_error_page(edit(site, comment_id, "too late"), 404)


def test_an_unknown_or_malformed_id_is_a_page_not_a_crash(site: TestClient) -> None:
    sign_up(site, "ada")
    assert is_error_page(site.get("/comments/999999/edit"), 404)
    assert is_error_page(delete(site, 999999), 404)
    assert site.get("/comments/not-a-number/edit").status_code == 422
    assert site.get(f"/comments/{2**70}/edit").status_code in (404, 422)


def test_an_admin_deletes_but_does_not_edit_and_hide_stays_as_is(site: TestClient) -> None:
    create_member(site.app.state.engine, "root", PASSWORD, is_admin=True)
    sign_up(site, "ada")
    spam = post_comment(site, "spam")
    other = post_comment(site, "also spam")
    site.cookies.clear()
    sign_in(site, "root")
    article = _article(site.get(f"/papers/{PAPER}").text, spam)
    assert f'action="/comments/{spam}/hide"' in article
    assert f'action="/comments/{spam}/delete"' in article and "/edit" not in article
    assert is_error_page(edit(site, spam, "root's words"), 403)
    token = form_token(site.get(f"/papers/{PAPER}").text)
    site.post(f"/comments/{other}/hide", data={"csrf_token": token})
    assert comment_count(site) == 1
    assert delete(site, spam).status_code == 303
    assert delete(site, other).status_code == 303
    assert comment_count(site) == 0


def test_editing_a_hidden_comment_does_not_unhide_it(site: TestClient) -> None:
    create_member(site.app.state.engine, "root", PASSWORD, is_admin=True)
    sign_up(site, "ada")
    comment_id = post_comment(site, "spam")
    site.cookies.clear()
    sign_in(site, "root")
    token = form_token(site.get(f"/papers/{PAPER}").text)
    site.post(f"/comments/{comment_id}/hide", data={"csrf_token": token})
    site.cookies.clear()
    sign_in(site, "ada")
    assert edit(site, comment_id, "not spam, honest").status_code == 303
    assert stored(site, comment_id).hidden_at is not None
    assert "not spam, honest" not in site.get(f"/papers/{PAPER}").text
    assert comment_count(site) == 0


def test_edit_and_delete_need_the_csrf_token(site: TestClient) -> None:
    sign_up(site, "ada")
    comment_id = post_comment(site, "mine")
    assert site.post(f"/comments/{comment_id}/edit", data={"body": "x"}).status_code == 403
    assert site.post(f"/comments/{comment_id}/delete").status_code == 403
    assert stored(site, comment_id).body == "mine"
