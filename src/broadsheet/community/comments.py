"""Comments on papers: markdown as written, rendered to sanitised HTML for display."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

import nh3
from markdown_it import MarkdownIt
from sqlalchemy import Connection, Engine, select, update

from broadsheet.community import ratelimit
from broadsheet.community.accounts import Member
from broadsheet.db.schema import comments, papers, users
from broadsheet.db.version import bump_version

MAX_COMMENT = 10_000
ALLOWED_TAGS = {
    "p",
    "br",
    "em",
    "strong",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "del",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}


class CommentError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Comment:
    id: int
    paper_id: str
    username: str
    body: str
    html: str
    created_at: datetime
    hidden: bool


@cache
def _markdown() -> MarkdownIt:
    # Raw HTML in the source is escaped, not passed through; nh3 then removes anything unsafe.
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("strikethrough")


def render_markdown(text: str) -> str:
    """Safe HTML for a comment: markdown rendered, then only harmless tags and links kept."""
    html = _markdown().render(text)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow noopener noreferrer ugc",
    )


def add_comment(engine: Engine, member: Member, paper_id: str, body: str) -> Comment:
    """Store a comment and bump the paper's comment count in the same transaction."""
    body = body.strip()
    if not body:
        raise CommentError("A comment needs some text.")
    if len(body) > MAX_COMMENT:
        raise CommentError(f"Comments are at most {MAX_COMMENT:,} characters.")
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine.begin() as connection:
        ratelimit.hit(connection, ratelimit.COMMENTS, f"member:{member.id}")
        changed = connection.execute(
            update(papers)
            .where(papers.c.id == paper_id, papers.c.hidden_at.is_(None))
            .values(comment_count=papers.c.comment_count + 1)
        ).rowcount
        if not changed:
            raise CommentError(f"No paper {paper_id!r} to comment on.")
        result = connection.execute(
            comments.insert().values(
                paper_id=paper_id, user_id=member.id, body=body, created_at=now
            )
        )
        bump_version(connection)
    return Comment(
        result.inserted_primary_key[0],
        paper_id,
        member.username,
        body,
        render_markdown(body),
        now,
        hidden=False,
    )


def list_comments(
    connection: Connection, paper_id: str, *, include_hidden: bool = False
) -> list[Comment]:
    """A paper's comments, oldest first; hidden ones only for admins."""
    query = (
        select(comments, users.c.username)
        .join(users, users.c.id == comments.c.user_id)
        .where(comments.c.paper_id == paper_id)
        .order_by(comments.c.created_at, comments.c.id)
    )
    if not include_hidden:
        query = query.where(comments.c.hidden_at.is_(None))
    return [
        Comment(
            row.id,
            row.paper_id,
            row.username,
            row.body,
            render_markdown(row.body),
            row.created_at,
            hidden=row.hidden_at is not None,
        )
        for row in connection.execute(query)
    ]
