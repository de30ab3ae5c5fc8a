"""The HTML pages over the real daily-papers file, and what an empty store says."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from broadsheet.papers.record import Paper
from broadsheet.papers.repository import upsert_papers
from web.conftest import form_token


def cards(html: str) -> list[str]:
    return re.findall(r'<h2><a href="/papers/([^"]+)">', html)


def test_empty_store_says_how_to_fill_it(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "broadsheet import" in page.text and "broadsheet harvest arxiv" in page.text
    assert "Get trending papers in your email inbox!" in page.text and "Subscribe" in page.text


def test_daily_weekly_monthly_views_and_navigation(daily_client: TestClient) -> None:
    latest = daily_client.get("/")
    assert "Friday, April 5, 2024" in latest.text and cards(latest.text)
    previous = re.search(r'rel="prev" href="([^"]+)"', latest.text).group(1)
    earlier = daily_client.get(previous.replace("&amp;", "&"))
    assert earlier.status_code == 200 and set(cards(earlier.text)).isdisjoint(cards(latest.text))
    week = daily_client.get("/?date=2024-01-10&period=weekly&sort=top")
    assert "Week of January 8, 2024" in week.text and len(cards(week.text)) == 30
    votes = [int(v) for v in re.findall(r'aria-label="upvotes">(\d+)<', week.text)]
    assert votes == sorted(votes, reverse=True) and votes[0] > 0
    more = daily_client.get(
        "/?date=2024-01-10&period=weekly&sort=top&page=2", headers={"HX-Request": "true"}
    )
    assert "<html" not in more.text and set(cards(more.text)).isdisjoint(cards(week.text))
    month = daily_client.get("/?date=2024-01-10&period=monthly")
    assert "January 2024" in month.text


def test_paper_page_and_card_dates(daily_client: TestClient) -> None:
    page = daily_client.get("/papers/2401.10241")
    assert page.status_code == 200
    assert "Zero Bubble Pipeline Parallelism" in page.text and "Penghui Qi" in page.text
    assert 'href="https://arxiv.org/pdf/2401.10241"' in page.text
    assert daily_client.get("/papers/arXiv:2401.10241v2").status_code == 200  # any spelling
    assert daily_client.get("/papers/9999.99999").status_code == 404
    week = daily_client.get("/?date=2024-01-10&period=weekly")
    assert re.search(r"· (Jan|Dec) \d+, 202[34]</span>", week.text)  # not this year: with year


def test_search_page_shows_cards_with_highlights(daily_client: TestClient) -> None:
    page = daily_client.get("/search", params={"q": "pipeline parallelism"})
    assert page.status_code == 200
    assert "2401.10241" in cards(page.text)
    assert "<mark>" in page.text
    for hostile in ["'; DROP TABLE papers; --", '" OR 1=1 --', "NEAR(a b", "*", "(((", "日本語"]:
        assert daily_client.get("/search", params={"q": hostile}).status_code == 200
    assert "Zero Bubble" in daily_client.get("/papers/2401.10241").text  # nothing dropped


def test_script_in_an_abstract_renders_inert(client: TestClient, store: Engine) -> None:
    with store.begin() as connection:
        upsert_papers(
            connection,
            [
                Paper(
                    id="2401.99999",
                    title_raw="<script>alert('t')</script> Title",
                    abstract_raw="Abstract <script>alert('a')</script><img src=x onerror=alert(1)>",
                    source="test",
                )
            ],
        )
    for path in ["/papers/2401.99999", "/search?q=alert+abstract"]:
        html = client.get(path).text
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;" in html


def test_subscribe_needs_the_csrf_token_and_collects_the_address(
    client: TestClient, store: Engine
) -> None:
    refused = client.post("/subscribe", data={"email": "reader@example.org"})
    assert refused.status_code == 403
    token = form_token(client.get("/").text)
    wrong = client.post(
        "/subscribe", data={"email": "reader@example.org", "csrf_token": "x" + token}
    )
    assert wrong.status_code == 403
    done = client.post("/subscribe", data={"email": "reader@Example.ORG", "csrf_token": token})
    assert done.status_code == 200 and "confirm" in done.text
    again = client.post("/subscribe", data={"email": "reader@example.org", "csrf_token": token})
    assert again.status_code == 200
    bad = client.post("/subscribe", data={"email": "not-an-address", "csrf_token": token})
    assert bad.status_code == 422 and "not an email address" in bad.text
    with store.connect() as connection:
        rows = connection.exec_driver_sql("SELECT email, status FROM subscribers").all()
    assert rows == [("reader@example.org", "pending")]
