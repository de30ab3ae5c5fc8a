"""Accounts, votes, comments, submissions, organisation pages and moderation over HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from broadsheet.community import ratelimit
from broadsheet.community.accounts import create_member
from broadsheet.config import Settings
from broadsheet.db.schema import comments, papers, votes
from broadsheet.papers.record import FeedPlacement, Organisation, Paper
from broadsheet.papers.repository import upsert_papers
from broadsheet.web.app import create_app
from fake_arxiv import FakeArxiv, fake_arxiv
from helpers import live_server
from web.conftest import form_token

PASSWORD = "long enough password"
LAB = Organisation(slug="acme-lab", name="Acme", full_name="Acme Research Lab")


def _paper(paper_id: str, upvotes: int = 0, organisation: Organisation | None = None) -> Paper:
    from datetime import date, datetime

    return Paper(
        id=paper_id,
        title_raw=f"Paper {paper_id}",
        abstract_raw=f"Abstract of {paper_id}.",
        source="test",
        authors=["Ada Lovelace", "Alan Turing"],
        published_at=datetime(2024, 1, 10, 9),
        organisation=organisation,
        upvotes=upvotes,
        feed=FeedPlacement(day=date(2024, 1, 10), source="test"),
    )


@pytest.fixture
def arxiv() -> Iterator[FakeArxiv]:
    with fake_arxiv() as fake:
        yield fake


@pytest.fixture
def site(store: Engine, database_url: str, arxiv: FakeArxiv) -> Iterator[TestClient]:
    with store.begin() as connection:
        upsert_papers(
            connection,
            [
                _paper("2401.00001", upvotes=3),
                _paper("2401.00002", organisation=LAB),
                _paper("hep-th/9901001", organisation=LAB),
            ],
        )
    settings = Settings(
        database_url=database_url,
        secret_key="test-secret",
        arxiv_api_url=arxiv.url,
        arxiv_api_delay=0.0,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _account_form(client: TestClient, path: str, username: str, password: str):
    token = form_token(client.get(path).text)
    return client.post(
        path,
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )


def sign_up(client: TestClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return _account_form(client, "/signup", username, password)


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return _account_form(client, "/signin", username, password)


def vote(client: TestClient, paper_id: str, htmx: bool = True) -> httpx.Response:
    token = form_token(client.get(f"/papers/{paper_id}").text)
    headers = {"HX-Request": "true", "X-CSRF-Token": token} if htmx else {}
    data = {} if htmx else {"csrf_token": token}
    return client.post(
        f"/papers/{paper_id}/vote", headers=headers, data=data, follow_redirects=False
    )


def stored_votes(store: Engine, paper_id: str) -> tuple[int, int]:
    with store.connect() as connection:
        counter = connection.execute(
            select(papers.c.member_votes).where(papers.c.id == paper_id)
        ).scalar_one()
        rows = len(connection.execute(select(votes).where(votes.c.paper_id == paper_id)).all())
    return counter, rows


def test_sign_up_sign_out_and_sign_in(site: TestClient) -> None:
    page = site.get("/")
    assert "Sign up" in page.text and "Sign out" not in page.text
    created = sign_up(site, "ada")
    assert created.status_code == 303 and created.headers["location"] == "/"
    assert "ada" in site.get("/").text and "Sign out" in site.get("/").text
    token = form_token(site.get("/").text)
    out = site.post("/signout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303
    assert "Sign out" not in site.get("/").text
    assert sign_in(site, "ada").status_code == 303
    assert "Sign out" in site.get("/").text


def test_sign_in_returns_to_the_page_asked_for_but_never_off_site(site: TestClient) -> None:
    create_member(site.app.state.engine, "ada", PASSWORD)
    token = form_token(site.get("/signin?next=/papers/2401.00002").text)
    for asked, landed in [
        ("/papers/2401.00002", "/papers/2401.00002"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
    ]:
        response = site.post(
            "/signin",
            data={"username": "ada", "password": PASSWORD, "csrf_token": token, "next": asked},
            follow_redirects=False,
        )
        assert response.headers["location"] == landed
        token = form_token(site.get("/").text)


def test_sign_up_and_sign_in_errors_name_the_problem(site: TestClient) -> None:
    assert "Usernames are 3 to 40" in sign_up(site, "a").text
    assert "at least 8 characters" in sign_up(site, "ada", "short").text
    assert sign_up(site, "ada").status_code == 303
    site.cookies.clear()
    taken = sign_up(site, "ADA")
    assert taken.status_code == 422 and "is taken" in taken.text
    wrong = sign_in(site, "ada", "not the password")
    assert wrong.status_code == 401 and "Wrong username or password" in wrong.text


def test_sign_in_attempts_are_rate_limited(site: TestClient) -> None:
    create_member(site.app.state.engine, "ada", PASSWORD)
    for _ in range(ratelimit.SIGN_INS.hits):
        assert sign_in(site, "ada", "guess").status_code == 401
    limited = sign_in(site, "ada", PASSWORD)  # even the right password, for now
    assert limited.status_code == 429 and "Too many sign in attempts" in limited.text


def test_posts_without_the_csrf_token_are_refused(site: TestClient) -> None:
    sign_up(site, "ada")
    for path, data in [
        ("/signup", {"username": "bob", "password": PASSWORD}),
        ("/signin", {"username": "ada", "password": PASSWORD}),
        ("/papers/2401.00001/vote", {}),
        ("/papers/2401.00001/comments", {"body": "hello"}),
        ("/submit", {"paper": "2401.00123"}),
        ("/signout", {}),
    ]:
        assert site.post(path, data=data).status_code == 403, path
    assert stored_votes(site.app.state.engine, "2401.00001") == (0, 0)


def test_voting_needs_an_account(site: TestClient) -> None:
    plain = vote(site, "2401.00001", htmx=False)
    assert plain.status_code == 303 and plain.headers["location"].startswith("/signin?next=")
    htmx = vote(site, "2401.00001")
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/signin")
    assert stored_votes(site.app.state.engine, "2401.00001") == (0, 0)
    assert 'title="Sign in to upvote"' in site.get("/").text


def test_htmx_vote_returns_the_redrawn_button_and_toggles(site: TestClient) -> None:
    sign_up(site, "ada")
    first = vote(site, "2401.00001")
    assert first.status_code == 200
    assert 'aria-pressed="true"' in first.text
    assert re.search(r'aria-label="upvotes">4<', first.text)  # 3 imported + 1
    assert 'aria-pressed="true"' in site.get("/?date=2024-01-10").text
    second = vote(site, "2401.00001")
    assert 'aria-pressed="false"' in second.text and re.search(r'upvotes">3<', second.text)
    assert stored_votes(site.app.state.engine, "2401.00001") == (0, 0)


def test_plain_form_vote_redirects_back(site: TestClient) -> None:
    sign_up(site, "ada")
    response = vote(site, "hep-th/9901001", htmx=False)
    assert response.status_code == 303
    assert stored_votes(site.app.state.engine, "hep-th/9901001") == (1, 1)


def test_fifty_members_voting_at_once_over_http_give_fifty(
    store: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ratelimit, "SIGN_INS", ratelimit.Limit("sign_in", 1000, 900))
    with store.begin() as connection:
        upsert_papers(connection, [_paper("2401.00001")])
    names = [f"member{i:02d}" for i in range(50)]
    for name in names:
        create_member(store, name, PASSWORD)
    app = create_app(Settings(database_url=database_url, secret_key="test-secret"))
    with live_server(app) as base_url:
        clients = [httpx.Client(base_url=base_url, timeout=60) for _ in names]
        tokens = []
        for client, name in zip(clients, names, strict=True):
            token = form_token(client.get("/signin").text)
            signed_in = client.post(
                "/signin", data={"username": name, "password": PASSWORD, "csrf_token": token}
            )
            assert signed_in.status_code == 303, signed_in.text[:300]
            tokens.append(form_token(client.get("/papers/2401.00001").text))

        def click(pair: tuple[httpx.Client, str]) -> tuple[int, str]:
            client, token = pair
            response = client.post(
                "/papers/2401.00001/vote", headers={"HX-Request": "true", "X-CSRF-Token": token}
            )
            return response.status_code, response.text[:200]

        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(click, zip(clients, tokens, strict=True)))
        for client in clients:
            client.close()
    assert [status for status, _ in statuses] == [200] * 50, statuses
    assert stored_votes(store, "2401.00001") == (50, 50)


def test_comments_render_safe_markdown_and_count_on_cards(site: TestClient) -> None:
    sign_up(site, "ada")
    token = form_token(site.get("/papers/2401.00002").text)
    posted = site.post(
        "/papers/2401.00002/comments",
        data={
            "body": "**Nice** <script>alert(1)</script> [x](javascript:alert(1))",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert posted.status_code == 303 and "#comment-" in posted.headers["location"]
    page = site.get("/papers/2401.00002").text
    assert "<strong>Nice</strong>" in page
    assert "<script>alert(1)" not in page and 'href="javascript:' not in page
    assert "&lt;script&gt;" in page
    assert 'aria-label="1 comment"' in site.get("/?date=2024-01-10").text
    htmx = site.post(
        "/papers/2401.00002/comments",
        data={"body": "second"},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert htmx.status_code == 200 and htmx.text.lstrip().startswith('<article class="comment')
    empty = site.post("/papers/2401.00002/comments", data={"body": "  ", "csrf_token": token})
    assert empty.status_code == 422


def test_comments_are_rate_limited(site: TestClient) -> None:
    sign_up(site, "ada")
    token = form_token(site.get("/papers/2401.00002").text)
    headers = {"HX-Request": "true", "X-CSRF-Token": token}
    statuses = [
        site.post(
            "/papers/2401.00002/comments", data={"body": f"c{i}"}, headers=headers
        ).status_code
        for i in range(ratelimit.COMMENTS.hits + 1)
    ]
    assert statuses[:-1] == [200] * ratelimit.COMMENTS.hits
    assert statuses[-1] == 429
    with site.app.state.engine.connect() as connection:
        assert len(connection.execute(select(comments)).all()) == ratelimit.COMMENTS.hits


def test_submit_a_paper_by_url(site: TestClient, arxiv: FakeArxiv) -> None:
    assert site.get("/submit", follow_redirects=False).status_code == 303  # members only
    sign_up(site, "ada")
    token = form_token(site.get("/submit").text)
    response = site.post(
        "/submit",
        data={"paper": "https://arxiv.org/abs/2401.00123v1", "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/papers/2401.00123"
    assert "Gradient Noise Is All You Need" in site.get("/papers/2401.00123").text
    assert "Gradient Noise Is All You Need" in site.get("/").text  # on today's feed
    bad = site.post("/submit", data={"paper": "not a paper", "csrf_token": token})
    assert bad.status_code == 422 and "is not an arXiv id" in bad.text


def test_organisation_page_lists_its_papers(site: TestClient) -> None:
    page = site.get("/organisations/acme-lab")
    assert page.status_code == 200
    assert "Acme Research Lab" in page.text and "2 papers" in page.text
    assert set(re.findall(r'<h2><a href="/papers/([^"]+)">', page.text)) == {
        "2401.00002",
        "hep-th/9901001",
    }
    assert 'href="/organisations/acme-lab"' in site.get("/?date=2024-01-10").text
    assert site.get("/organisations/nobody").status_code == 404


def test_admins_hide_papers_and_comments(site: TestClient) -> None:
    engine = site.app.state.engine
    create_member(engine, "root", PASSWORD, is_admin=True)
    sign_up(site, "ada")
    token = form_token(site.get("/papers/2401.00002").text)
    site.post("/papers/2401.00002/comments", data={"body": "spam", "csrf_token": token})
    assert "Hide this paper" not in site.get("/papers/2401.00002").text
    refused = site.post("/papers/2401.00002/hide", data={"csrf_token": token})
    assert refused.status_code == 403

    site.cookies.clear()
    sign_in(site, "root")
    token = form_token(site.get("/papers/2401.00002").text)
    with engine.connect() as connection:
        comment_id = connection.execute(select(comments.c.id)).scalar_one()
    site.post(f"/comments/{comment_id}/hide", data={"csrf_token": token})
    site.post("/papers/2401.00002/hide", data={"csrf_token": token})
    assert "This paper is hidden" in site.get("/papers/2401.00002").text  # admins still see it

    site.cookies.clear()
    assert site.get("/papers/2401.00002").status_code == 404
    assert "/papers/2401.00002" not in site.get("/?date=2024-01-10").text
    assert site.get("/api/papers/2401.00002").status_code == 404
    with engine.connect() as connection:
        assert (
            connection.execute(
                select(papers.c.comment_count).where(papers.c.id == "2401.00002")
            ).scalar_one()
            == 0
        )
