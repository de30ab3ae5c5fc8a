"""``broadsheet doctor``: what an admin most often gets wrong, checked, with what to do.

Each check is a function returning a :class:`Check`: ok, warn (works, but worse than it
should), or fail (something does not work). None of them changes the store: the schema is
read, never migrated, and mail is sent only to the address asked for.
"""

from __future__ import annotations

import shutil
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from broadsheet.config import LOCAL_HOSTS, Settings
from broadsheet.db.engine import alembic_config, make_engine

GIB = 1024**3
DISK_WARN_BYTES = GIB  # free space under which the store's disk is reported short...
DISK_WARN_SHARE = 0.10  # ...or under this share of the disk
DISK_FAIL_BYTES = 100 * 1024**2  # a day's harvest and the next index save need more than this
HTTP_TIMEOUT = 10.0  # seconds to wait for /healthz
DEFAULT_PORTS = {"http": 80, "https": 443}


class Status(StrEnum):
    ok = "ok"
    warn = "warn"
    fail = "fail"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    advice: str = ""  # what to do; empty when nothing needs doing


def _origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of ``url``, the port filled in from the scheme."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(scheme, 0)


def _shown(origin: tuple[str, str, int]) -> str:
    scheme, host, port = origin
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + ("" if DEFAULT_PORTS.get(scheme) == port else f":{port}")


def mail_configured(settings: Settings) -> bool:
    """Whether the admin pointed Broadsheet at a mail server (not the default, local one)."""
    given = settings.model_fields_set
    return "smtp_host" in given or "smtp_username" in given


def check_base_url(settings: Settings, reached: str | None = None) -> Check:
    """BASE_URL, which links in mails and feeds start with: an absolute http(s) address, not
    this machine's when mail goes out, and (given the address the site is reached at) the same
    scheme, host and port that address ends at after redirects."""
    name = "BASE_URL"
    base = settings.base_url
    scheme, host, _ = _origin(base)
    if scheme not in DEFAULT_PORTS or not host:
        return Check(
            name,
            Status.fail,
            f"{base!r} is not an absolute http(s) address",
            "set BROADSHEET_BASE_URL to the public address, e.g. https://papers.example.org",
        )
    if reached is None:
        if host in LOCAL_HOSTS and mail_configured(settings):
            return Check(
                name,
                Status.warn,
                f"{base} is this machine's own address, and mail is configured",
                "links in mails will not open for their readers: set BROADSHEET_BASE_URL to "
                "the public address (then run doctor with --url to compare)",
            )
        return Check(name, Status.ok, base)
    try:
        response = httpx.get(
            reached.rstrip("/") + "/healthz", timeout=HTTP_TIMEOUT, follow_redirects=True
        )
    except httpx.HTTPError as exc:
        return Check(
            name,
            Status.fail,
            f"{reached} did not answer ({type(exc).__name__}: {exc})",
            "start `broadsheet serve`, or check the address, proxy and firewall",
        )
    warming_up = response.status_code == 503 and "status" in _json(response)
    if response.status_code != 200 and not warming_up:
        return Check(
            name,
            Status.fail,
            f"{response.url} answered {response.status_code}, not Broadsheet's health check",
            "point the proxy at `broadsheet serve`",
        )
    landed, expected = _origin(str(response.url)), _origin(base)
    if landed != expected:
        return Check(
            name,
            Status.fail,
            f"the site answers at {_shown(landed)}, but BASE_URL is {_shown(expected)}",
            f"set BROADSHEET_BASE_URL={_shown(landed)} so that links in mails and feeds lead there",
        )
    return Check(name, Status.ok, f"{base} answers its health check")


def _json(response: httpx.Response) -> dict:
    try:
        found = response.json()
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _mail_server(settings: Settings) -> str:
    return f"{settings.smtp_host}:{settings.smtp_port} ({settings.smtp_security})"


def check_mail(settings: Settings, mail_to: str | None = None) -> Check:
    """The mail server: a test mail to ``mail_to``; without one, a connection that greets it,
    asks NOOP and signs in when a username is set (nothing is sent)."""
    from broadsheet.digest.mailer import DeliveryError, Mailer, _connect

    name = "mail"
    server = _mail_server(settings)
    if mail_to is not None:
        message = EmailMessage()
        message["From"] = settings.mail_from
        message["To"] = mail_to
        message["Subject"] = f"{settings.site_name}: a test mail from broadsheet doctor"
        message.set_content(
            f"This mail was sent by `broadsheet doctor` to check {settings.site_name}'s mail "
            f"settings. Links in mails will start with {settings.base_url}\n"
        )
        try:
            with Mailer(settings) as mailer:
                mailer.send(message)
        except DeliveryError as exc:
            return Check(name, Status.fail, f"{server} refused the test mail: {exc}", _MAIL_FIX)
        return Check(name, Status.ok, f"test mail to {mail_to} accepted by {server}")
    try:
        connection = _connect(settings)
        try:
            connection.ehlo_or_helo_if_needed()
            code, reply = connection.noop()
            if code != 250:
                raise smtplib.SMTPResponseException(code, reply)
            if settings.smtp_username:
                connection.login(settings.smtp_username, settings.smtp_password or "")
        finally:
            connection.close()
    except (smtplib.SMTPException, OSError) as exc:
        detail = f"{server}: {type(exc).__name__}: {_smtp_reason(exc)}"
        if not mail_configured(settings):
            return Check(
                name,
                Status.warn,
                f"no mail server configured, and the default one does not answer ({detail})",
                "set BROADSHEET_SMTP_HOST and the rest, or no confirmation or digest goes out",
            )
        return Check(name, Status.fail, detail, _MAIL_FIX)
    signed_in = f", signed in as {settings.smtp_username}" if settings.smtp_username else ""
    return Check(
        name, Status.ok, f"{server} answers{signed_in}; send a test mail with --mail-to ADDRESS"
    )


_MAIL_FIX = (
    "check BROADSHEET_SMTP_HOST, _PORT, _SECURITY, _USERNAME and _PASSWORD "
    "(port 587 is usually starttls, 465 tls)"
)


def _smtp_reason(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error
        reply = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        return f"{exc.smtp_code} {reply}"
    return str(exc) or "no reason given"


def check_secret_key(settings: Settings) -> Check:
    """The signing key's file: readable by its owner only."""
    from broadsheet.secret_key import key_file

    name = "secret key"
    if settings.secret_key:
        return Check(name, Status.ok, "set in BROADSHEET_SECRET_KEY")
    path = key_file(settings)
    if path is None:
        return Check(name, Status.ok, "kept in the store (site_secrets), shared by every server")
    if not path.exists():
        return Check(name, Status.ok, f"{path} is made, owner-only, on the first start")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        return Check(
            name,
            Status.warn,
            f"{path} is readable by others than its owner (mode {mode:o}): anyone who reads "
            "it can sign in as any member",
            f"chmod 600 {path}",
        )
    return Check(name, Status.ok, f"{path} (mode {mode:o})")


def check_migrations(engine: Engine) -> Check:
    """The store's schema revision against the newest this Broadsheet knows (read, not
    applied)."""
    name = "migrations"
    scripts = ScriptDirectory.from_config(alembic_config(engine))
    heads = set(scripts.get_heads())
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    newest = ", ".join(sorted(heads))
    if not current:
        return Check(
            name,
            Status.fail,
            "the store has no schema yet",
            "run `broadsheet db upgrade` (every command but doctor does it too)",
        )
    known = {revision for revision in current if _known(scripts, revision)}
    if known != current:
        return Check(
            name,
            Status.fail,
            f"the store is at revision {', '.join(sorted(current - known))}, which this "
            "Broadsheet does not know: a newer version migrated it",
            "upgrade Broadsheet to the version that migrated the store",
        )
    if current != heads:
        return Check(
            name,
            Status.fail,
            f"the store is at revision {', '.join(sorted(current))}, the newest is {newest}",
            "run `broadsheet db upgrade` (after a backup)",
        )
    return Check(name, Status.ok, f"at the newest revision, {newest}")


def _known(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is not None
    except Exception:  # alembic raises its own errors for unknown revisions
        return False


def check_vectors(engine: Engine) -> Check:
    """Whether the store can keep and search vectors (PostgreSQL: the pgvector extension)."""
    from broadsheet.search.vectors import vectors_unavailable

    problem = vectors_unavailable(engine)
    if problem is not None:
        first, _, advice = problem.partition(". ")
        return Check("vector search", Status.fail, first, advice)
    return Check("vector search", Status.ok, "vectors can be stored and searched")


def check_coverage(engine: Engine, model: str) -> Check:
    """Papers with a vector for the model, of all papers."""
    from broadsheet.search.vectors import coverage

    with engine.connect() as connection:
        embedded, total = coverage(connection, model)
    detail = f"{embedded:,} of {total:,} papers have a vector ({model})"
    if embedded < total:
        return Check(
            "index coverage",
            Status.warn,
            detail + "; the rest are found by keywords only",
            "run `broadsheet index`",
        )
    return Check("index coverage", Status.ok, detail)


def check_saved_indexes(engine: Engine, model: str) -> Check:
    """The indexes a large SQLite store saves beside itself, against what the store holds now."""
    from broadsheet.search.keyword_index import for_engine as keyword_index
    from broadsheet.search.vector_index import for_engine as vector_backend

    name = "saved indexes"
    with engine.connect() as connection:
        keywords = keyword_index(connection).saved_lag(connection)
    lags = {"keyword": keywords, "vector": vector_backend(engine).saved_lag(engine, model)}
    saved = {kind: lag for kind, lag in lags.items() if lag is not None}
    if not saved:
        return Check(name, Status.ok, "none needed: searches read the store itself")
    parts = []
    for kind, lag in saved.items():
        if lag.held == 0:
            parts.append(f"{kind}: none saved yet for {lag.behind:,} papers")
        else:
            parts.append(f"{kind}: {lag.held:,} saved, {lag.behind:,} added or changed since")
    detail = "; ".join(parts)
    if any(lag.stale for lag in saved.values()):
        return Check(
            name,
            Status.warn,
            detail,
            "run `broadsheet index` (searches are slower until it saves them)",
        )
    return Check(name, Status.ok, detail)


def store_folder(settings: Settings) -> Path | None:
    """The folder holding a file store and what is saved beside it; None for a database
    server's store (its disk is the server's)."""
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).resolve().parent


def check_disk(settings: Settings) -> Check:
    """Free space where the store and its saved indexes live."""
    name = "disk space"
    folder = store_folder(settings)
    if folder is None:
        return Check(
            name, Status.ok, "the store lives on its database server: watch that server's disk"
        )
    while not folder.exists() and folder != folder.parent:  # a store not made yet
        folder = folder.parent
    usage = shutil.disk_usage(folder)
    share = usage.free / usage.total if usage.total else 0.0
    detail = f"{usage.free / GIB:,.1f} GiB free ({share:.0%}) in {folder}"
    if usage.free < DISK_FAIL_BYTES:
        return Check(name, Status.fail, detail, "free space now: writes and index saves fail")
    if usage.free < DISK_WARN_BYTES or share < DISK_WARN_SHARE:
        return Check(
            name, Status.warn, detail, "free some space: imports and index saves need room"
        )
    return Check(name, Status.ok, detail)


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    """``check``'s answer, or a failed check saying what went wrong while checking."""
    try:
        return check()
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "no reason given"  # not the SQL
        return Check(name, Status.fail, f"could not check: {type(exc).__name__}: {reason}")


def run_checks(
    settings: Settings, url: str | None = None, mail_to: str | None = None
) -> list[Check]:
    """Every check, in the order an admin would fix them."""
    checks = [
        _guarded("BASE_URL", lambda: check_base_url(settings, url)),
        _guarded("mail", lambda: check_mail(settings, mail_to)),
        _guarded("secret key", lambda: check_secret_key(settings)),
        _guarded("disk space", lambda: check_disk(settings)),
    ]
    engine = make_engine(settings.database_url)
    try:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:
            shown = engine.url.render_as_string(hide_password=True)
            return [
                *checks,
                Check(
                    "database",
                    Status.fail,
                    f"{shown}: {type(exc).__name__}",
                    "check BROADSHEET_DATABASE_URL and that the database server runs",
                ),
            ]
        model = settings.embedding_model
        schema = _guarded("migrations", lambda: check_migrations(engine))
        checks.append(schema)
        later = {
            "vector search": lambda: check_vectors(engine),
            "index coverage": lambda: check_coverage(engine, model),
            "saved indexes": lambda: check_saved_indexes(engine, model),
        }
        for name, check in later.items():
            if schema.status == Status.fail:
                checks.append(Check(name, Status.warn, "not checked: fix the migrations first"))
            else:
                checks.append(_guarded(name, check))
    finally:
        engine.dispose()
    return checks


def failed(checks: list[Check]) -> bool:
    return any(check.status == Status.fail for check in checks)


_STYLES = {Status.ok: "green", Status.warn: "yellow", Status.fail: "red"}


def as_table(checks: list[Check]) -> Table:
    table = Table("check", "status", "detail", "what to do", title="broadsheet doctor")
    for check in checks:
        style = _STYLES[check.status]
        table.add_row(
            escape(check.name),
            f"[{style}]{check.status}[/{style}]",
            escape(check.detail),
            escape(check.advice or "-"),
        )
    return table
