"""A reversed date range is refused by the API, naming both fields, and explained by the page."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_api_refuses_until_before_since(client: TestClient) -> None:
    response = client.get(
        "/api/papers/search", params={"q": "x", "since": "2024-02-01", "until": "2024-01-01"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["query", "until"]
    assert problem["msg"] == "until (2024-01-01) is before since (2024-02-01)"


def test_api_takes_a_one_day_range(client: TestClient) -> None:
    response = client.get(
        "/api/papers/search", params={"q": "x", "since": "2024-01-01", "until": "2024-01-01"}
    )
    assert response.status_code == 200 and response.json()["total"] == 0


def test_page_explains_the_reversed_range_inline(client: TestClient) -> None:
    page = client.get("/search", params={"q": "x", "since": "2024-02-01", "until": "2024-01-01"})
    assert page.status_code == 422 and "To: is before From" in page.text
    assert page.headers["content-type"].startswith("text/html")


def test_page_says_which_filter_excludes_everything(daily_client: TestClient) -> None:
    page = daily_client.get("/search", params={"q": "diffusion", "category": "cs.LG"})
    assert page.status_code == 200
    assert "No paper in this store has a category, so none is in “cs.LG”." in page.text
    assert "Nothing to show: try other words, or fewer filters." in page.text
