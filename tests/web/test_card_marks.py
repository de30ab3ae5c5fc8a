"""Every page that shows cards draws the member's own marks on them: ▲ pressed where they
upvoted, ★ Saved where they saved, 👎 Dismissed where they dismissed (the shared daily
papers, a part of them embedded so that "for you" has picks)."""

from __future__ import annotations

import re
from datetime import datetime
from html.parser import HTMLParser
from urllib.parse import quote

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from broadsheet.community.accounts import create_member
from broadsheet.community.dismissals import dismiss
from broadsheet.community.follows import Kind, follow
from broadsheet.community.library import (
    Visibility,
    create_collection,
    save_paper,
    set_paper_collections,
)
from broadsheet.community.votes import set_vote
from broadsheet.config import Settings
from broadsheet.db.schema import dismissed_papers, organisations, papers, saved_papers, votes
from broadsheet.web.app import create_app
from daily_store import TOPIC
from feed.test_for_you import _embedded
from web.test_community import PASSWORD, sign_in

KINDS = ("vote", "save", "dismiss")


class Marks(HTMLParser):
    """The state of each vote, save and dismiss button of a page: (kind, paper id) -> pressed."""

    def __init__(self) -> None:
        super().__init__()
        self.form: tuple[str, str] | None = None
        self.found: dict[tuple[str, str], bool] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        classes = (named.get("class") or "").split()
        if tag == "form":
            kind = next((k for k in KINDS if k in classes), None)
            action = named.get("action") or ""
            match = re.fullmatch(r"/papers/(.+)/(vote|save|dismiss)", action)
            self.form = (kind, match.group(1)) if kind and match else None
        elif tag == "button" and self.form and "aria-pressed" in named:
            self.found[self.form] = named["aria-pressed"] == "true"

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.form = None


def marks_on(html: str) -> dict[tuple[str, str], bool]:
    parser = Marks()
    parser.feed(html)
    return parser.found


def truth(store: Engine, member_id: int) -> dict[str, set[str]]:
    """What the member did, as the store holds it."""
    tables = {"vote": votes, "save": saved_papers, "dismiss": dismissed_papers}
    with store.connect() as connection:
        return {
            kind: set(
                connection.execute(
                    select(table.c.paper_id).where(table.c.user_id == member_id)
                ).scalars()
            )
            for kind, table in tables.items()
        }


def card_ids(client: TestClient, path: str) -> list[str]:
    return list(dict.fromkeys(pid for kind, pid in marks_on(client.get(path).text)))


def test_every_page_of_cards_shows_the_members_votes_saves_and_dismissals(
    daily_store: Engine,
) -> None:
    url = daily_store.url.render_as_string(hide_password=False)
    member = create_member(daily_store, "reader", PASSWORD)
    with TestClient(create_app(Settings(database_url=url, secret_key="marks"))) as client:
        sign_in(client, "reader")
        feed = card_ids(client, "/")
        found = card_ids(client, f"/search?q={TOPIC}")
        assert len(feed) >= 4 and len(found) >= 3
        # on the feed and in search: one of each mark, and one paper with all three
        for ids in (feed, found):
            set_vote(daily_store, member, ids[0], voted=True)
            save_paper(daily_store, member, ids[1])
            dismiss(daily_store, member, ids[2])
        set_vote(daily_store, member, feed[3], voted=True)
        save_paper(daily_store, member, feed[3])
        dismiss(daily_store, member, feed[3])
        for paper_id in _embedded(daily_store, TOPIC)[:3]:  # picks for "for you"
            save_paper(daily_store, member, paper_id)
        # the library and collections hold voted and dismissed papers as well as saved ones
        shared = create_collection(daily_store, member, "Shared", Visibility.link)
        public = create_collection(daily_store, member, "Public", Visibility.public)
        for paper_id in (feed[0], feed[2], feed[3], found[0]):
            set_paper_collections(daily_store, member, paper_id, [shared.id, public.id])
        with daily_store.begin() as connection:  # the daily papers name no organisations
            lab = connection.execute(
                organisations.insert()
                .values(slug="acme-lab", name="Acme", created_at=datetime(2024, 1, 1))
                .returning(organisations.c.id)
            ).scalar_one()
            connection.execute(
                papers.update().where(papers.c.id == feed[0]).values(organisation_id=lab)
            )
            authors = connection.execute(
                select(papers.c.authors).where(papers.c.id == feed[0])
            ).scalar_one()
        follow(daily_store, member, Kind.author, authors[0])
        profile = client.get("/members/reader").text
        public_link = re.search(r'href="(/c/[A-Za-z0-9_-]+)"', profile).group(1)

        pages = {
            "/": feed[0],
            "/?period=weekly&sort=top": None,
            f"/search?q={TOPIC}": found[0],
            f"/papers/{feed[0]}": feed[0],
            f"/authors/{quote(authors[0])}": feed[0],
            "/organisations/acme-lab": feed[0],
            "/following": feed[0],
            "/for-you": None,  # picks leave out what the member liked or dismissed
            "/library": feed[0],
            "/library?show=unread": feed[0],
            f"/library?collection={shared.id}": feed[0],
            f"/c/{shared.share_token}": feed[0],
            public_link: feed[0],
        }
        marked = truth(daily_store, member.id)
        for path, voted in pages.items():
            answer = client.get(path)
            assert answer.status_code == 200, path
            shown = marks_on(answer.text)
            assert shown, f"{path} shows no cards"
            for (kind, paper_id), pressed in shown.items():
                assert pressed == (paper_id in marked[kind]), (path, kind, paper_id)
            if voted is not None:
                assert shown[("vote", voted)] is True, path
        library = marks_on(client.get(f"/library?collection={shared.id}").text)
        assert library[("dismiss", feed[2])] and library[("vote", feed[3])]
