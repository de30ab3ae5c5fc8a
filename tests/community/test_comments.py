from __future__ import annotations

from html.parser import HTMLParser

import pytest
from sqlalchemy import Engine, select

from broadsheet.community.accounts import create_member
from broadsheet.community.comments import (
    ALLOWED_TAGS,
    CommentError,
    add_comment,
    list_comments,
    render_markdown,
)
from broadsheet.db.schema import papers


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


def test_empty_long_or_misplaced_comments_are_refused(papers_store: Engine) -> None:
    ada = create_member(papers_store, "ada", "long enough password")
    with pytest.raises(CommentError, match="needs some text"):
        add_comment(papers_store, ada, "2401.00001", "   ")
    with pytest.raises(CommentError, match="at most"):
        add_comment(papers_store, ada, "2401.00001", "x" * 10_001)
    with pytest.raises(CommentError, match="No paper"):
        add_comment(papers_store, ada, "2401.99999", "hello")
    assert _comment_count(papers_store, "2401.00001") == 0
