"""The store's tables, in SQLAlchemy Core so that SQLite and PostgreSQL share one definition."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

organisations = Table(
    "organisations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", String(200), nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("full_name", Text),
    Column("created_at", DateTime, nullable=False),
)

papers = Table(
    "papers",
    metadata,
    # A stable integer key (SQLite's rowid alias, so VACUUM keeps it): search indexes use it.
    Column("seq", Integer, primary_key=True),
    # arXiv id without version (``2401.01234``, ``hep-th/9901001``); other corpora use ``name:id``.
    Column("id", String(64), nullable=False, unique=True),
    Column("version", Integer),
    Column("title", Text, nullable=False),
    Column("title_raw", Text, nullable=False),
    Column("abstract", Text, nullable=False),
    Column("abstract_raw", Text, nullable=False),
    Column("authors", JSON, nullable=False),  # names in order, for display without a join
    Column("primary_category", String(64)),
    Column("categories", Text, nullable=False, default=""),  # space separated, primary first
    Column("organisation_id", Integer, ForeignKey("organisations.id")),
    Column("published_at", DateTime),
    Column("updated_at", DateTime),
    Column("comment", Text),
    Column("doi", Text),
    Column("journal_ref", Text),
    Column("report_no", Text),
    Column("license", Text),
    Column("links", JSON, nullable=False),  # e.g. {"code": "https://github.com/..."}
    Column("upvotes", Integer, nullable=False, default=0),  # imported count from the source
    Column("source", String(32), nullable=False),
    Column("record_hash", String(32), nullable=False),  # over every stored field: detects change
    Column("created_at", DateTime, nullable=False),
    Column("modified_at", DateTime, nullable=False),
    # community, kept in step with votes and comments in the same transaction
    Column("member_votes", Integer, nullable=False, server_default=text("0")),
    Column("comment_count", Integer, nullable=False, server_default=text("0")),
    Column("hidden_at", DateTime),  # hidden by an admin
    Index("ix_papers_published_at", "published_at"),
    Index("ix_papers_primary_category", "primary_category"),
    Index(  # the few hidden papers, which lists of saved papers leave out without a join
        "ix_papers_hidden",
        "id",
        sqlite_where=text("hidden_at IS NOT NULL"),
        postgresql_where=text("hidden_at IS NOT NULL"),
    ),
    Index(  # most papers have no organisation: index only those that do
        "ix_papers_organisation_id",
        "organisation_id",
        sqlite_where=text("organisation_id IS NOT NULL"),
        postgresql_where=text("organisation_id IS NOT NULL"),
    ),
)

authors = Table(
    "authors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
)

paper_authors = Table(
    "paper_authors",
    metadata,
    Column("paper_id", String(64), ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("author_id", Integer, ForeignKey("authors.id"), nullable=False),
    Index("ix_paper_authors_author_id", "author_id"),
    sqlite_with_rowid=False,  # clustered on the key: one B-tree fewer to write per row
)

paper_categories = Table(
    "paper_categories",
    metadata,
    Column("paper_id", String(64), ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
    Column("category", String(64), primary_key=True),
    Index("ix_paper_categories_category", "category"),
    sqlite_with_rowid=False,
)

feed_entries = Table(
    "feed_entries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("paper_id", String(64), ForeignKey("papers.id", ondelete="CASCADE"), nullable=False),
    Column("day", Date, nullable=False),
    Column("source", String(64), nullable=False),  # "daily_papers", "harvest:cs.LG", "submission"
    Column("submitted_by", Text),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("paper_id", "day", name="uq_feed_entries_paper_day"),
    Index("ix_feed_entries_day", "day"),
)

paper_vectors = Table(
    "paper_vectors",
    metadata,
    Column("paper_seq", Integer, ForeignKey("papers.seq", ondelete="CASCADE"), primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("text_hash", String(32), nullable=False),  # of the exact text embedded
    Column("dim", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=False),  # float32, L2-normalised
    Column("created_at", DateTime, nullable=False),
)

passage_vectors = Table(
    "passage_vectors",
    metadata,
    Column("paper_seq", Integer, ForeignKey("papers.seq", ondelete="CASCADE"), primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("text_hash", String(32), nullable=False),  # of the passages embedded
    Column("count", Integer, nullable=False),
    Column("dim", Integer, nullable=False),
    Column("vectors", LargeBinary, nullable=False),  # float16, count x dim, rows L2-normalised
)

import_runs = Table(
    "import_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("path", Text, nullable=False),
    Column("format", String(32), nullable=False),
    Column("file_size", BigInteger, nullable=False),
    Column("file_mtime_ns", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # running, done, failed
    Column("resume_offset", BigInteger, nullable=False, default=0),  # byte offset or record index
    Column("resume_line", BigInteger, nullable=False, default=0),  # records consumed so far
    Column("read", Integer, nullable=False, default=0),
    Column("added", Integer, nullable=False, default=0),
    Column("updated", Integer, nullable=False, default=0),
    Column("unchanged", Integer, nullable=False, default=0),
    Column("skipped", Integer, nullable=False, default=0),
    Column("errors", Integer, nullable=False, default=0),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Index("ix_import_runs_path", "path"),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(40), nullable=False, unique=True),
    Column("email", String(320)),  # optional, for password resets
    Column("email_verified_at", DateTime),  # a reset mails only a verified address
    Column("password_hash", Text, nullable=False),  # argon2id
    Column("is_admin", Boolean, nullable=False, server_default=text("0")),
    Column("created_at", DateTime, nullable=False),
    # what a session names: random per account, replaced by sign-out, a password change or an
    # admin's sign-out, which ends every session begun before
    Column("session_key", String(64), nullable=False),
    Column("disabled_at", DateTime),  # an admin disabled the account: no way in
    sqlite_autoincrement=True,  # ids are never reused (sessions and links name them)
)
# Usernames (ASCII) are unique in any letter case ("Ada" and "ada" are one member).
Index("uq_users_username_lower", func.lower(users.c.username), unique=True)

votes = Table(
    "votes",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("paper_id", String(64), ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", DateTime, nullable=False),
    Index("ix_votes_paper_id", "paper_id"),
)

# A member's library: the papers they saved, with read/unread and a private note each.
saved_papers = Table(
    "saved_papers",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("paper_id", String(64), ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
    Column("saved_at", DateTime, nullable=False),
    Column("read_at", DateTime),  # unread while empty
    Column("note", Text),  # markdown as written; rendered and sanitised on display
    Column("note_updated_at", DateTime),
    Index("ix_saved_papers_paper_id", "paper_id"),
)

# "Not interested": papers a member dismissed, negatives for their "for you" model.
dismissed_papers = Table(
    "dismissed_papers",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("paper_id", String(64), ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
    Column("dismissed_at", DateTime, nullable=False),
)

# Authors and organisations a member follows: their new papers on /following and in the digest.
followed_authors = Table(
    "followed_authors",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("author_id", Integer, ForeignKey("authors.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", DateTime, nullable=False),
)

followed_organisations = Table(
    "followed_organisations",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "organisation_id",
        Integer,
        ForeignKey("organisations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("created_at", DateTime, nullable=False),
)

# A member's API tokens: only a hash of each is kept (the token is shown once, at creation).
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(80), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256, hex
    Column("created_at", DateTime, nullable=False),
    Column("last_used_at", DateTime),
    Index("ix_api_tokens_user_id", "user_id"),
    sqlite_autoincrement=True,
)

# Named collections of saved papers: private, shared by link, or public on the profile.
collections = Table(
    "collections",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(80), nullable=False),
    Column("visibility", String(8), nullable=False),  # private, link, public
    Column("share_token", String(32), nullable=False, unique=True),  # the /c/{token} address
    Column("created_at", DateTime, nullable=False),
    # broadsheet.names.fold(name): one name per member in any letter case or script
    Column("name_key", String(400), nullable=False),
    Index("uq_collections_user_name_key", "user_id", "name_key", unique=True),
    sqlite_autoincrement=True,
)

collection_papers = Table(
    "collection_papers",
    metadata,
    Column(
        "collection_id",
        Integer,
        ForeignKey("collections.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("paper_id", String(64), ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
    Column("added_at", DateTime, nullable=False),
    Index("ix_collection_papers_paper_id", "paper_id"),
)

comments = Table(
    "comments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("paper_id", String(64), ForeignKey("papers.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("body", Text, nullable=False),  # markdown as written; rendered and sanitised on display
    Column("created_at", DateTime, nullable=False),
    Column("hidden_at", DateTime),
    Column("edited_at", DateTime),  # the last edit by its author
    Index("ix_comments_paper_id", "paper_id"),
    sqlite_autoincrement=True,
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # pending, confirmed, unsubscribed
    Column("created_at", DateTime, nullable=False),
    Column("frequency", String(8), nullable=False, server_default=text("'daily'")),
    Column("topics", JSON, nullable=False, server_default=text("'[]'")),  # saved searches
    Column("confirmed_at", DateTime),
    Column("unsubscribed_at", DateTime),
    Column("failure_count", Integer, nullable=False, server_default=text("0")),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="SET NULL")),  # a member's own
    Column("confirmation_nonce", String(64)),  # the one confirmation link good now
    Column("confirmation_sent_at", DateTime),  # for the cool-down between confirmation mails
    Column("pending_email", String(320)),  # a member's new address, until its link is opened
    Index("ix_subscribers_user_id", "user_id", unique=True),
    # the cool-down looks for links mailed in the last minutes, among every subscriber
    Index("ix_subscribers_confirmation_sent_at", "confirmation_sent_at"),
    sqlite_autoincrement=True,
)
# one subscription per mailbox: nearly every mail server ignores the local part's case
Index("uq_subscribers_email_lower", func.lower(subscribers.c.email), unique=True)

rate_limits = Table(
    "rate_limits",
    metadata,
    Column("key", String(300), primary_key=True),  # action and actor, e.g. "vote:user:7"
    Column("window_start", BigInteger, primary_key=True),  # epoch seconds
    Column("hits", Integer, nullable=False),
    Index("ix_rate_limits_window_start", "window_start"),
)

store_version = Table(  # shard rows (db/version.py): their sum goes up with each visible write
    "store_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)

site_secrets = Table(  # keys every server shares (stores without a file beside them)
    "site_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
)

digest_outbox = Table(  # one digest per subscriber per period: sent exactly once
    "digest_outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False
    ),
    Column("period_key", String(16), nullable=False),  # 2026-11-24 (daily) or 2026-W48 (weekly)
    Column("status", String(16), nullable=False),  # pending, sent, failed, empty
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("next_attempt_at", DateTime, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("sent_at", DateTime),
    UniqueConstraint("subscriber_id", "period_key"),
    Index("ix_digest_outbox_period_key", "period_key", "status"),
)

digest_sent_papers = Table(  # papers already in someone's digest are not sent to them again
    "digest_sent_papers",
    metadata,
    Column(
        "subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("paper_id", String(64), ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
    Column("period_key", String(16), nullable=False),
)

# Each run of a worker's job (ops/jobs.py): a run being made is also the claim that keeps a
# second worker off the same job. ``counts`` says what it did; ``error`` why it failed.
job_runs = Table(
    "job_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job", String(100), nullable=False),  # harvest:cs.CL, index, digest:daily, ...
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),  # empty while it runs
    Column("outcome", String(16), nullable=False),  # running, ok, failed
    Column("counts", JSON, nullable=False),
    Column("error", Text),  # short, with any credentials taken out
    Column("worker", String(300), nullable=False),  # host:pid
    Index("ix_job_runs_job_started_at", "job", "started_at"),
    sqlite_autoincrement=True,
)

job_alerts = Table(  # a late job's current episode: its admins are mailed once per episode
    "job_alerts",
    metadata,
    Column("job", String(100), primary_key=True),
    Column("late_since", DateTime, nullable=False),
    Column("claimed_at", DateTime),  # a worker mailing it now (a lapsed claim is taken again)
    Column("mailed_at", DateTime),
)

admin_audit = Table(  # what admins did, who and when (community/audit.py)
    "admin_audit",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime, nullable=False),
    Column("actor_id", Integer, ForeignKey("users.id", ondelete="SET NULL")),
    Column("action", String(64), nullable=False),  # e.g. member.disable, paper.unhide
    Column("target", Text, nullable=False),  # what it was done to, e.g. "user:7"
    Column("detail", JSON, nullable=False),
    Index("ix_admin_audit_at", "at"),
    Index("ix_admin_audit_actor_id", "actor_id"),  # deleting a member clears theirs
    sqlite_autoincrement=True,
)

# A member's report of a comment, open until an admin hides the comment or dismisses it
comment_reports = Table(
    "comment_reports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("comment_id", Integer, ForeignKey("comments.id", ondelete="CASCADE"), nullable=False),
    Column("reporter_id", Integer, ForeignKey("users.id", ondelete="SET NULL")),
    Column("reason", String(500), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("resolved_at", DateTime),
    Column("resolved_by", Integer, ForeignKey("users.id", ondelete="SET NULL")),
    Column("outcome", String(16)),  # hidden, dismissed
    UniqueConstraint("comment_id", "reporter_id", name="uq_comment_reports_comment_reporter"),
    Index("ix_comment_reports_open", "resolved_at", "id"),
    Index("ix_comment_reports_reporter_id", "reporter_id"),
    Index("ix_comment_reports_resolved_by", "resolved_by"),
    sqlite_autoincrement=True,
)

# What an admin changed of the site's settings while it runs (community/site_settings.py)
site_settings = Table(
    "site_settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("updated_by", Integer, ForeignKey("users.id", ondelete="SET NULL")),
    Index("ix_site_settings_updated_by", "updated_by"),
)
