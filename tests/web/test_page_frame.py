"""What every page carries: a skip link, landmarks, and an icon the browser finds."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


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
