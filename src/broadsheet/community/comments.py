"""Comments on papers: markdown as written, rendered to sanitised HTML for display.

Members post, edit and delete their own comments; admins may delete any (and hide them, in
moderation.py). ``papers.comment_count`` counts the visible ones and moves in the same
transaction as every change, and each change bumps the store version so cached pages follow.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache

import nh3
from markdown_it import MarkdownIt
from sqlalchemy import Connection, Engine, Row, delete, select, update

from broadsheet.community import ratelimit
from broadsheet.community.accounts import Member
from broadsheet.community.moderation import NotAllowed, NotFound
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
    user_id: int
    edited_at: datetime | None = None


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


def checked_body(body: str) -> str:
    """The text to store for a new or edited comment; CommentError says what is wrong with it.

    NUL characters are dropped: they show as nothing, and PostgreSQL's text cannot hold them.
    """
    body = body.replace("\x00", "").strip()
    if not body:
        raise CommentError("Comment text is empty: a comment needs some text.")
    if len(body) > MAX_COMMENT:
        raise CommentError(
            f"Comment text is too long: comments are at most {MAX_COMMENT:,} characters."
        )
    return body


def add_comment(engine: Engine, member: Member, paper_id: str, body: str) -> Comment:
    """Store a comment and bump the paper's comment count in the same transaction."""
    body = checked_body(body)
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
        user_id=member.id,
    )


def _comments_query():
    return select(comments, users.c.username).join(users, users.c.id == comments.c.user_id)


def _from_row(row: Row) -> Comment:
    return Comment(
        row.id,
        row.paper_id,
        row.username,
        row.body,
        render_markdown(row.body),
        row.created_at,
        hidden=row.hidden_at is not None,
        user_id=row.user_id,
        edited_at=row.edited_at,
    )


def list_comments(
    connection: Connection, paper_id: str, *, include_hidden: bool = False
) -> list[Comment]:
    """A paper's comments, oldest first; hidden ones only for admins."""
    query = (
        _comments_query()
        .where(comments.c.paper_id == paper_id)
        .order_by(comments.c.created_at, comments.c.id)
    )
    if not include_hidden:
        query = query.where(comments.c.hidden_at.is_(None))
    return [_from_row(row) for row in connection.execute(query)]


def can_edit(member: Member | None, comment: Comment) -> bool:
    """Only the author edits a comment: an admin's edit would put words in someone's mouth."""
    return member is not None and member.id == comment.user_id


def can_delete(member: Member | None, comment: Comment) -> bool:
    """The author deletes their comment; an admin may delete any."""
    return member is not None and (member.is_admin or member.id == comment.user_id)


def _existing(connection: Connection, comment_id: int) -> Comment:
    row = connection.execute(_comments_query().where(comments.c.id == comment_id)).first()
    if row is None:
        raise NotFound(f"No comment {comment_id}: it may have been deleted.")
    return _from_row(row)


def comment_to_edit(engine: Engine, member: Member, comment_id: int) -> Comment:
    """The comment for its author's edit form; NotFound or NotAllowed otherwise."""
    with engine.connect() as connection:
        comment = _existing(connection, comment_id)
    if not can_edit(member, comment):
        raise NotAllowed("Only the author of a comment can edit it.")
    return comment


def edit_comment(engine: Engine, member: Member, comment_id: int, body: str) -> Comment:
    """Replace a comment's text, by its author, under the rules and rate limit of posting.

    Hidden stays hidden: an edit never undoes an admin's decision.
    """
    body = checked_body(body)
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine.begin() as connection:
        comment = _existing(connection, comment_id)
        if not can_edit(member, comment):
            raise NotAllowed("Only the author of a comment can edit it.")
        ratelimit.hit(connection, ratelimit.COMMENTS, f"member:{member.id}")
        changed = connection.execute(
            update(comments)
            .where(comments.c.id == comment_id, comments.c.user_id == member.id)
            .values(body=body, edited_at=now)
        ).rowcount
        if not changed:  # deleted between the read and the write
            raise NotFound(f"No comment {comment_id}: it may have been deleted.")
        bump_version(connection)
    return replace(comment, body=body, html=render_markdown(body), edited_at=now)


def delete_comment(engine: Engine, member: Member, comment_id: int) -> str:
    """Delete a comment (its author, or an admin); returns the paper's id.

    Only the request that really removes the row lowers the paper's count, and only when the
    comment was visible (hiding already took it off), so a double click or a race counts once.
    """
    with engine.begin() as connection:
        if not can_delete(member, _existing(connection, comment_id)):
            raise NotAllowed("Only the author of a comment, or an admin, can delete it.")
        removed = connection.execute(
            delete(comments)
            .where(comments.c.id == comment_id)
            .returning(comments.c.paper_id, comments.c.hidden_at)
        ).first()
        if removed is None:
            raise NotFound(f"No comment {comment_id}: it may have been deleted.")
        if removed.hidden_at is None:
            connection.execute(
                update(papers)
                .where(papers.c.id == removed.paper_id)
                .values(comment_count=papers.c.comment_count - 1)
            )
        bump_version(connection)
    return removed.paper_id
