from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser

import pytest
from sqlalchemy import Engine, select

from broadsheet.community import ratelimit
from broadsheet.community.accounts import create_member
from broadsheet.community.comments import (
    ALLOWED_TAGS,
    MAX_COMMENT,
    CommentError,
    add_comment,
    delete_comment,
    edit_comment,
    list_comments,
    render_markdown,
)
from broadsheet.community.moderation import NotAllowed, NotFound, set_comment_hidden
from broadsheet.db.schema import comments, papers
from broadsheet.db.version import current_version


def _comment_count(store: Engine, paper_id: str) -> int:
    with store.connect() as connection:
        return connection.execute(
            select(papers.c.comment_count).where(papers.c.id == paper_id)
        ).scalar_one()


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        "hi <img src=x onerror=alert(1)>",
        "[click](javascript:alert(1))",
        '<a href="#" onclick="alert(1)">x</a>',
        "<iframe src=https://evil.example></iframe>",
        "![x](https://evil.example/x.png)",
    ],
)
def test_markdown_renders_inert(source: str) -> None:
    elements = _elements(render_markdown(source))
    assert {tag for tag, _ in elements} <= ALLOWED_TAGS
    for _, attributes in elements:
        assert not any(name.startswith("on") for name in attributes)
        assert not (attributes.get("href") or "").lower().startswith("javascript:")


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))


def _elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    """The elements a browser would build from ``html`` (escaped text builds none)."""
    collector = _Collector()
    collector.feed(html)
    return collector.elements


def test_markdown_keeps_harmless_formatting() -> None:
    html = render_markdown("**bold** and `code`\n\n- one\n- two\n\n[paper](https://arxiv.org)")
    assert "<strong>bold</strong>" in html
    assert "<code>code</code>" in html
    assert "<li>one</li>" in html
    assert 'href="https://arxiv.org"' in html
    assert 'rel="nofollow noopener noreferrer ugc"' in html


def test_comments_are_stored_counted_and_listed_in_order(papers_store: Engine) -> None:
    ada = create_member(papers_store, "ada", "long enough password")
    bob = create_member(papers_store, "bob", "long enough password")
    first = add_comment(papers_store, ada, "2401.00001", "  First *thoughts*  ")
    add_comment(papers_store, bob, "2401.00001", "A reply")
    assert first.body == "First *thoughts*"
    assert "<em>thoughts</em>" in first.html
    assert _comment_count(papers_store, "2401.00001") == 2
    with papers_store.connect() as connection:
        listed = list_comments(connection, "2401.00001")
    assert [(c.username, c.body) for c in listed] == [
        ("ada", "First *thoughts*"),
        ("bob", "A reply"),
    ]


def test_nul_characters_are_dropped_from_comments_on_every_engine(papers_store: Engine) -> None:
    """PostgreSQL's text cannot hold NUL: a comment with one must not fail, nor differ by engine."""
    ada = create_member(papers_store, "ada", "long enough password")
    first = add_comment(papers_store, ada, "2401.00001", "Nice\x00 paper\x00")
    assert first.body == "Nice paper"
    edited = edit_comment(papers_store, ada, first.id, "\x00Nicer\x00 paper")
    assert edited.body == "Nicer paper"
    with pytest.raises(CommentError, match="empty"):
        add_comment(papers_store, ada, "2401.00001", " \x00 ")
    with papers_store.connect() as connection:
        assert [c.body for c in list_comments(connection, "2401.00001")] == ["Nicer paper"]


def test_empty_long_or_misplaced_comments_are_refused(papers_store: Engine) -> None:
    ada = create_member(papers_store, "ada", "long enough password")
    with pytest.raises(CommentError, match="needs some text"):
        add_comment(papers_store, ada, "2401.00001", "   ")
    with pytest.raises(CommentError, match="at most"):
        add_comment(papers_store, ada, "2401.00001", "x" * 10_001)
    with pytest.raises(CommentError, match="No paper"):
        add_comment(papers_store, ada, "2401.99999", "hello")
    assert _comment_count(papers_store, "2401.00001") == 0


def _stored(store: Engine, comment_id: int):
    with store.connect() as connection:
        return connection.execute(select(comments).where(comments.c.id == comment_id)).first()


def test_the_author_edits_a_comment_and_the_edit_is_stamped(papers_store: Engine) -> None:
    ada = create_member(papers_store, "ada", "long enough password")
    posted = add_comment(papers_store, ada, "2401.00001", "First *draft*")
    edited = edit_comment(papers_store, ada, posted.id, "  Second **draft**  ")
    assert edited.body == "Second **draft**" and "<strong>draft</strong>" in edited.html
    assert edited.edited_at is not None and edited.edited_at >= posted.created_at
    assert edited.created_at == posted.created_at
    with papers_store.connect() as connection:
        [listed] = list_comments(connection, "2401.00001")
    assert listed.body == "Second **draft**" and listed.edited_at == edited.edited_at
    assert _comment_count(papers_store, "2401.00001") == 1


def test_edits_follow_the_rules_for_posting(papers_store: Engine) -> None:
    ada = create_member(papers_store, "ada", "long enough password")
    posted = add_comment(papers_store, ada, "2401.00001", "kept")
    with pytest.raises(CommentError, match="Comment text"):
        edit_comment(papers_store, ada, posted.id, "   ")
    with pytest.raises(CommentError, match="at most"):
        edit_comment(papers_store, ada, posted.id, "x" * (MAX_COMMENT + 1))
    assert _stored(papers_store, posted.id).body == "kept"
    assert _stored(papers_store, posted.id).edited_at is None


def test_edits_count_against_the_comment_rate_limit(papers_store: Engine) -> None:
    ada = create_member(papers_store, "ada", "long enough password")
    posted = add_comment(papers_store, ada, "2401.00001", "first")
    for i in range(ratelimit.COMMENTS.hits - 1):
        edit_comment(papers_store, ada, posted.id, f"edit {i}")
    with pytest.raises(ratelimit.RateLimited):
        edit_comment(papers_store, ada, posted.id, "one too many")
    assert _stored(papers_store, posted.id).body == f"edit {ratelimit.COMMENTS.hits - 2}"


def test_only_the_author_edits_not_another_member_nor_an_admin(papers_store: Engine) -> None:
    ada = create_member(papers_store, "ada", "long enough password")
    bob = create_member(papers_store, "bob", "long enough password")
    root = create_member(papers_store, "root", "long enough password", is_admin=True)
    posted = add_comment(papers_store, ada, "2401.00001", "mine")
    for other in (bob, root):
        with pytest.raises(NotAllowed):
            edit_comment(papers_store, other, posted.id, "theirs now")
    with pytest.raises(NotFound):
        edit_comment(papers_store, ada, posted.id + 100, "nothing there")
    assert _stored(papers_store, posted.id).body == "mine"


def test_editing_a_hidden_comment_keeps_it_hidden(papers_store: Engine) -> None:
    ada = create_member(papers_store, "ada", "long enough password")
    root = create_member(papers_store, "root", "long enough password", is_admin=True)
    posted = add_comment(papers_store, ada, "2401.00001", "spam")
    set_comment_hidden(papers_store, root, posted.id, True)
    edited = edit_comment(papers_store, ada, posted.id, "not spam, honest")
    assert edited.hidden and _stored(papers_store, posted.id).hidden_at is not None
    assert _comment_count(papers_store, "2401.00001") == 0


def test_deleting_removes_the_comment_and_keeps_the_count(papers_store: Engine) -> None:
    ada = create_member(papers_store, "ada", "long enough password")
    first = add_comment(papers_store, ada, "2401.00001", "one")
    add_comment(papers_store, ada, "2401.00001", "two")
    with papers_store.connect() as connection:
        before = current_version(connection)
    assert delete_comment(papers_store, ada, first.id) == "2401.00001"
    assert _stored(papers_store, first.id) is None
    assert _comment_count(papers_store, "2401.00001") == 1
    with papers_store.connect() as connection:
        assert current_version(connection) > before
    with pytest.raises(NotFound):  # a second click, or a stale page
        delete_comment(papers_store, ada, first.id)
    assert _comment_count(papers_store, "2401.00001") == 1


def test_another_member_cannot_delete_but_an_admin_can(papers_store: Engine) -> None:
    ada = create_member(papers_store, "ada", "long enough password")
    bob = create_member(papers_store, "bob", "long enough password")
    root = create_member(papers_store, "root", "long enough password", is_admin=True)
    posted = add_comment(papers_store, ada, "2401.00001", "mine")
    with pytest.raises(NotAllowed):
        delete_comment(papers_store, bob, posted.id)
    assert _comment_count(papers_store, "2401.00001") == 1
    delete_comment(papers_store, root, posted.id)
    assert _comment_count(papers_store, "2401.00001") == 0


def test_deleting_a_hidden_comment_does_not_count_it_twice(papers_store: Engine) -> None:
    ada = create_member(papers_store, "ada", "long enough password")
    root = create_member(papers_store, "root", "long enough password", is_admin=True)
    add_comment(papers_store, ada, "2401.00001", "visible")
    hidden = add_comment(papers_store, ada, "2401.00001", "hidden")
    set_comment_hidden(papers_store, root, hidden.id, True)
    assert _comment_count(papers_store, "2401.00001") == 1
    delete_comment(papers_store, ada, hidden.id)
    assert _comment_count(papers_store, "2401.00001") == 1


def test_deleting_at_once_from_two_clicks_removes_one_count(papers_store: Engine) -> None:
    ada = create_member(papers_store, "ada", "long enough password")
    add_comment(papers_store, ada, "2401.00001", "stays")
    posted = add_comment(papers_store, ada, "2401.00001", "goes")

    def attempt() -> str:
        try:
            return delete_comment(papers_store, ada, posted.id)
        except NotFound:
            return "not found"

    with ThreadPoolExecutor(4) as pool:
        outcomes = sorted(pool.map(lambda _: attempt(), range(4)))
    assert outcomes == ["2401.00001"] + ["not found"] * 3
    assert _comment_count(papers_store, "2401.00001") == 1
