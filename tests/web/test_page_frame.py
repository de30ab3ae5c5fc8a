"""What every page carries: a skip link, landmarks, and an icon the browser finds."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from broadsheet.config import Settings
from broadsheet.papers.record import Paper
from broadsheet.papers.repository import upsert_papers
from broadsheet.web.app import create_app
from web.test_community import sign_up
from web.test_library import new_collection


def test_every_page_starts_with_a_skip_link_to_the_main_content(client: TestClient) -> None:
    for path in ("/", "/signin", "/search?q=attention"):
        html = client.get(path).text
        body = html[html.index("<body") :]
        first_link = re.search(r"<a [^>]*>", body).group(0)
        assert 'href="#main"' in first_link, path
        assert re.search(r'<main[^>]* id="main"', html), path


def test_the_subscribe_banner_is_a_named_landmark(client: TestClient) -> None:
    html = client.get("/").text
    banner = re.search(r'<(section|aside)[^>]*class="banner"[^>]*>', html).group(0)
    assert 'aria-label="' in banner


def test_the_icon_is_served_where_browsers_look(client: TestClient) -> None:
    html = client.get("/").text
    icon = re.search(r'<link rel="icon"[^>]* href="([^"]+)"', html).group(1)
    for path in (icon, "/favicon.ico"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("image/svg+xml"), path
        assert b"<svg" in response.content


FORGED = "evil.example"


def test_no_link_on_any_page_names_a_forged_host(store: Engine, database_url: str) -> None:
    with store.begin() as connection:
        paper = Paper("2401.00001", "Attention", "Attention.", "test", authors=["Ada Lovelace"])
        upsert_papers(connection, [paper])
    settings = Settings(database_url=database_url, secret_key="test", base_url="https://p.example")
    with TestClient(create_app(settings), base_url="https://p.example") as client:
        sign_up(client, "ada")
        shared = new_collection(client, "Picks", "public")
        page = client.get(f"/library?collection={shared}").text
        token = re.search(r'href="(/c/[A-Za-z0-9_-]+)"', page).group(1)
        client.cookies.clear()
        paths = ["/", "/papers/2401.00001", "/search?q=attention", "/feed.atom", token]
        paths += [f"{token}.atom", "/search.atom?q=attention", "/papers/2401.00001.bib", "/nowhere"]
        for path in paths:
            answer = client.get(path, headers={"Host": FORGED})
            assert FORGED not in answer.text, path
            assert answer.status_code == (404 if path == "/nowhere" else 200), path


def test_assets_are_named_by_path(client: TestClient) -> None:
    head = client.get("/", headers={"Host": FORGED}).text.split("</head>", 1)[0]
    assets = re.findall(r'<(?:link|script) [^>]*(?:href|src)="([^"]+)"', head)
    assert len(assets) >= 4 and all(url.startswith("/") for url in assets), assets
