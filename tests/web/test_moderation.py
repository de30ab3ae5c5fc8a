"""Admins see what they hid, paged, and show it again; to anyone else the page is not there."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from broadsheet.community.accounts import create_member
from broadsheet.db.schema import comments
from broadsheet.web.routes import moderation
from web.conftest import form_token
from web.test_community import PASSWORD, arxiv, sign_in, sign_up, site  # noqa: F401


def test_hiding_lands_on_the_list_of_hidden_things_where_it_can_be_undone(
    site: TestClient,  # noqa: F811
) -> None:
    engine = site.app.state.engine
    create_member(engine, "root", PASSWORD, is_admin=True)
    sign_up(site, "ada")
    token = form_token(site.get("/papers/2401.00002").text)
    site.post("/papers/2401.00002/comments", data={"body": "buy pills", "csrf_token": token})
    assert site.get("/admin/hidden").status_code == 404  # members: no such page
    site.cookies.clear()
    assert site.get("/admin/hidden", follow_redirects=False).status_code == 303  # visitors

    sign_in(site, "root")
    token = form_token(site.get("/papers/2401.00002").text)
    with engine.connect() as connection:
        comment_id = connection.execute(select(comments.c.id)).scalar_one()
    site.post(f"/comments/{comment_id}/hide", data={"csrf_token": token})
    hid = site.post("/papers/2401.00002/hide", data={"csrf_token": token}, follow_redirects=False)
    assert hid.headers["location"] == "/admin/hidden?hidden=2401.00002#papers"
    listed = site.get(hid.headers["location"])
    assert "2401.00002 is hidden" in listed.text
    assert "Papers (1)" in listed.text and "Comments (1)" in listed.text
    assert "buy pills" in listed.text and "ada on" in listed.text
    undo = re.search(r'<form method="post" action="(/papers/2401.00002/hide)"', listed.text)
    site.post(undo.group(1), data={"csrf_token": token, "hidden": "false"})
    site.post(f"/comments/{comment_id}/hide", data={"csrf_token": token, "hidden": "false"})
    shown = site.get("/admin/hidden")
    assert "No hidden papers." in shown.text and "No hidden comments." in shown.text
    site.cookies.clear()
    assert site.get("/papers/2401.00002").status_code == 200


def test_the_hidden_list_pages(site: TestClient, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setattr(moderation, "PAGE", 1)
    engine = site.app.state.engine
    create_member(engine, "root", PASSWORD, is_admin=True)
    sign_in(site, "root")
    token = form_token(site.get("/papers/2401.00002").text)
    for paper_id in ("2401.00001", "2401.00002"):
        site.post(f"/papers/{paper_id}/hide", data={"csrf_token": token})
    first = site.get("/admin/hidden")
    assert "Papers (2)" in first.text and "page 1 of 2" in first.text
    second = site.get("/admin/hidden?page=2")
    assert first.text.count('action="/papers/') == second.text.count('action="/papers/') == 1
