"""``broadsheet doctor``: each check's ok and its failure, against real stores, a real server
and a real mail server; the command's exit status."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from broadsheet.cli import app as cli_app
from broadsheet.config import Settings, get_settings
from broadsheet.db.engine import alembic_config, make_engine
from broadsheet.ops import doctor
from broadsheet.ops.doctor import Status
from broadsheet.papers.record import Paper
from broadsheet.papers.repository import upsert_papers
from broadsheet.search import ann, keyword_saved, vector_sqlite
from broadsheet.search.keyword_index import save_keyword_index
from broadsheet.search.vectors import pending_papers, save_graph, store_vectors
from broadsheet.web.app import create_app
from databases import ON_POSTGRES, drop_database, new_database_url
from helpers import free_port, live_server
from smtp_sink import SmtpSink, silent_smtp

MODEL = "test-model"
DIM = 16
PASSWORD = "hunter2-never-shown"


def settings_for(database_url: str, **values: object) -> Settings:
    return Settings(database_url=database_url, **values)


def add_papers(engine: Engine, first: int, count: int, embed: bool = True) -> None:
    """``count`` papers numbered from ``first``, with random unit vectors of ``MODEL``."""
    with engine.begin() as connection:
        upsert_papers(
            connection,
            [
                Paper(id=f"2401.{i:05d}", title_raw=f"Paper {i}", abstract_raw="Text.", source="t")
                for i in range(first, first + count)
            ],
        )
    if not embed:
        return
    with engine.connect() as reader:
        pending = list(pending_papers(reader, MODEL))
    vectors = np.random.default_rng(first).standard_normal((len(pending), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with engine.begin() as writer:
        store_vectors(writer, MODEL, pending, vectors)


# BASE_URL


def test_base_url_must_be_absolute() -> None:
    found = doctor.check_base_url(settings_for("sqlite://", base_url="papers.example.org"))
    assert found.status == Status.fail and "BROADSHEET_BASE_URL" in found.advice
    ok = doctor.check_base_url(settings_for("sqlite://", base_url="https://papers.example.org"))
    assert ok.status == Status.ok


def test_a_local_base_url_with_mail_configured_is_a_warning() -> None:
    local = settings_for("sqlite://", base_url="http://localhost:8000", smtp_host="mail.lab.org")
    assert doctor.check_base_url(local).status == Status.warn
    unmailed = settings_for("sqlite://", base_url="http://localhost:8000")
    assert doctor.check_base_url(unmailed).status == Status.ok


def test_base_url_against_the_address_reached(store: Engine, database_url: str) -> None:
    app = create_app(settings_for(database_url, secret_key="test-secret"))
    with live_server(app) as reached:
        same = doctor.check_base_url(settings_for(database_url, base_url=reached), reached)
        other = settings_for(database_url, base_url="https://papers.example.org")
        mismatch = doctor.check_base_url(other, reached)
    assert same.status == Status.ok
    assert mismatch.status == Status.fail
    assert reached in mismatch.detail and "https://papers.example.org" in mismatch.detail
    assert f"BROADSHEET_BASE_URL={reached}" in mismatch.advice


def test_an_address_that_does_not_answer_fails() -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    found = doctor.check_base_url(settings_for("sqlite://", base_url=nobody), nobody)
    assert found.status == Status.fail and "did not answer" in found.detail


# mail


def test_a_test_mail_reaches_the_address(smtp: SmtpSink) -> None:
    settings = settings_for("sqlite://", smtp_host=smtp.host, smtp_port=smtp.port)
    found = doctor.check_mail(settings, "admin@example.org")
    assert found.status == Status.ok
    [mail] = smtp.to("admin@example.org")
    assert "test mail" in mail["Subject"]
    assert settings.base_url in mail.get_content()


def test_without_an_address_the_server_is_only_greeted(smtp: SmtpSink) -> None:
    settings = settings_for("sqlite://", smtp_host=smtp.host, smtp_port=smtp.port)
    assert doctor.check_mail(settings).status == Status.ok
    assert smtp.messages == []


def test_an_unreachable_mail_server_fails() -> None:
    settings = settings_for("sqlite://", smtp_host="127.0.0.1", smtp_port=free_port())
    found = doctor.check_mail(settings)
    assert found.status == Status.fail and "ConnectionRefusedError" in found.detail
    assert "BROADSHEET_SMTP_HOST" in found.advice


def test_no_mail_server_configured_is_a_warning() -> None:
    # no host named: a site may mean to send no mail, but is told what that costs
    found = doctor.check_mail(settings_for("sqlite://", smtp_port=free_port()))
    assert found.status == Status.warn and "no mail server configured" in found.detail


def test_a_silent_mail_server_times_out() -> None:
    with silent_smtp() as (host, port):
        settings = settings_for("sqlite://", smtp_host=host, smtp_port=port, smtp_timeout=0.5)
        found = doctor.check_mail(settings)
    assert found.status == Status.fail and "timed out" in found.detail


def test_a_refused_sign_in_never_shows_the_password(smtp: SmtpSink) -> None:
    settings = settings_for(
        "sqlite://",
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        smtp_username="broadsheet",
        smtp_password=PASSWORD,
    )
    for found in (doctor.check_mail(settings), doctor.check_mail(settings, "a@example.org")):
        assert found.status == Status.fail
        assert PASSWORD not in found.detail + found.advice
    assert smtp.messages == []


# the secret key


def test_a_key_file_others_can_read_is_a_warning(tmp_path: Path) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'store.db'}")
    key = tmp_path / "store.db.secret"
    assert doctor.check_secret_key(settings).status == Status.ok  # made on the first start
    key.write_text("k" * 64)
    key.chmod(0o644)
    found = doctor.check_secret_key(settings)
    assert found.status == Status.warn and found.advice == f"chmod 600 {key}"
    key.chmod(0o600)
    assert doctor.check_secret_key(settings).status == Status.ok


def test_a_key_from_the_environment_or_the_store_has_no_file(tmp_path: Path) -> None:
    given = settings_for(f"sqlite:///{tmp_path / 'store.db'}", secret_key="k" * 64)
    assert "BROADSHEET_SECRET_KEY" in doctor.check_secret_key(given).detail
    served = settings_for("postgresql://broadsheet@db.lab.org/broadsheet")
    assert "site_secrets" in doctor.check_secret_key(served).detail


# migrations


def test_a_store_at_the_newest_revision(store: Engine) -> None:
    assert doctor.check_migrations(store).status == Status.ok


def test_a_stale_store_revision_fails(store: Engine) -> None:
    scripts = ScriptDirectory.from_config(alembic_config(store))
    earlier = scripts.get_revision(scripts.get_current_head()).down_revision
    with store.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": earlier})
    found = doctor.check_migrations(store)
    assert found.status == Status.fail
    assert f"revision {earlier}" in found.detail and "db upgrade" in found.advice


def test_a_revision_from_a_newer_broadsheet_fails(store: Engine) -> None:
    with store.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    found = doctor.check_migrations(store)
    assert found.status == Status.fail and "does not know" in found.detail


def test_an_empty_database_fails(tmp_path: Path) -> None:
    url = new_database_url(tmp_path, name="empty")
    engine = make_engine(url)
    try:
        found = doctor.check_migrations(engine)
    finally:
        engine.dispose()
        drop_database(url)
    assert found.status == Status.fail and "no schema" in found.detail


# vectors and indexes


def test_index_coverage(store: Engine) -> None:
    assert doctor.check_coverage(store, MODEL).status == Status.ok  # nothing to cover
    add_papers(store, 0, 5)
    ok = doctor.check_coverage(store, MODEL)
    assert ok.status == Status.ok and "5 of 5" in ok.detail
    add_papers(store, 5, 3, embed=False)
    found = doctor.check_coverage(store, MODEL)
    assert found.status == Status.warn and "5 of 8" in found.detail
    assert found.advice == "run `broadsheet index`"


def test_vector_search_is_available(store: Engine) -> None:
    assert doctor.check_vectors(store).status == Status.ok


@pytest.mark.skipif(not ON_POSTGRES, reason="pgvector is PostgreSQL's")
def test_a_store_without_pgvector_fails(store: Engine) -> None:
    from broadsheet.search.vector_pgvector import drop_dimensions

    with store.begin() as connection:  # as a restore without superuser rights leaves it
        drop_dimensions(connection)
        connection.execute(text("DROP EXTENSION vector"))
    found = doctor.check_vectors(store)
    assert found.status == Status.fail and "lacks the pgvector extension" in found.detail
    assert "CREATE EXTENSION vector" in found.advice


def test_saved_indexes_of_a_small_store_are_not_needed(store: Engine) -> None:
    add_papers(store, 0, 5)
    found = doctor.check_saved_indexes(store, MODEL)
    assert found.status == Status.ok and "none needed" in found.detail


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite saves indexes beside the store file")
def test_saved_indexes_fall_behind(store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    # a "large" store of a few papers: the thresholds are the only thing scaled down
    monkeypatch.setattr(keyword_saved, "SAVED_FROM", 5)
    monkeypatch.setattr(keyword_saved, "STALE_MOST", 2)
    monkeypatch.setattr(ann, "ANN_FROM", 5)
    monkeypatch.setattr(vector_sqlite, "ANN_FROM", 5)
    add_papers(store, 0, 6)
    unsaved = doctor.check_saved_indexes(store, MODEL)
    assert unsaved.status == Status.warn and "none saved yet" in unsaved.detail

    assert save_keyword_index(store) == 6 and save_graph(store, MODEL) == 6
    fresh = doctor.check_saved_indexes(store, MODEL)
    assert fresh.status == Status.ok
    assert "keyword: 6 saved, 0 added" in fresh.detail and "vector: 6 saved" in fresh.detail

    add_papers(store, 6, 3, embed=False)
    behind = doctor.check_saved_indexes(store, MODEL)
    assert behind.status == Status.warn and "keyword: 6 saved, 3 added" in behind.detail
    assert behind.advice.startswith("run `broadsheet index`")


# disk space


def test_disk_space(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'new' / 'store.db'}")
    ok = doctor.check_disk(settings)
    assert ok.status == Status.ok and str(tmp_path) in ok.detail
    monkeypatch.setattr(doctor, "DISK_WARN_BYTES", 2**60)  # more than any disk has free
    assert doctor.check_disk(settings).status == Status.warn
    monkeypatch.setattr(doctor, "DISK_FAIL_BYTES", 2**60)
    assert doctor.check_disk(settings).status == Status.fail
    served = doctor.check_disk(settings_for("postgresql://broadsheet@db.lab.org/broadsheet"))
    assert served.status == Status.ok and "database server" in served.detail


# the command


@pytest.fixture
def healthy(
    store: Engine, cli: CliRunner, smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> CliRunner:
    monkeypatch.setenv("BROADSHEET_SMTP_HOST", smtp.host)
    monkeypatch.setenv("BROADSHEET_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("BROADSHEET_BASE_URL", "https://papers.example.org")
    monkeypatch.setenv("BROADSHEET_SECRET_KEY", "k" * 64)
    get_settings.cache_clear()
    return cli


def test_the_command_exits_0_when_every_check_passes(healthy: CliRunner, smtp: SmtpSink) -> None:
    result = healthy.invoke(cli_app, ["doctor", "--mail-to", "admin@example.org"])
    assert result.exit_code == 0, result.output
    for name in ("BASE_URL", "mail", "secret key", "migrations", "vector search", "disk space"):
        assert name in result.output
    assert "fail" not in result.output
    assert len(smtp.to("admin@example.org")) == 1


def test_the_command_exits_1_on_a_fail(healthy: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROADSHEET_SMTP_PORT", str(free_port()))
    monkeypatch.setenv("BROADSHEET_SMTP_USERNAME", "broadsheet")
    monkeypatch.setenv("BROADSHEET_SMTP_PASSWORD", PASSWORD)
    get_settings.cache_clear()
    result = healthy.invoke(cli_app, ["doctor"])
    assert result.exit_code == 1
    assert "ConnectionRefusedError" in result.output
    assert PASSWORD not in result.output


def test_the_command_compares_base_url_with_the_live_site(
    healthy: CliRunner, database_url: str
) -> None:
    app = create_app(settings_for(database_url, secret_key="test-secret"))
    with live_server(app) as reached:
        result = healthy.invoke(cli_app, ["doctor", "--url", reached])
    assert result.exit_code == 1
    assert "BROADSHEET_BASE_URL" in result.output


def test_the_command_on_an_empty_database_says_to_migrate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = new_database_url(tmp_path, name="empty")
    monkeypatch.setenv("BROADSHEET_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli_app, ["doctor"])
    finally:
        get_settings.cache_clear()
        drop_database(url)
    assert result.exit_code == 1
    assert "broadsheet db upgrade" in result.output
    assert "not checked: fix the migrations first" in result.output


def test_an_unreachable_database_fails_without_showing_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"postgresql://broadsheet:{PASSWORD}@127.0.0.1:{free_port()}/broadsheet"
    monkeypatch.setenv("BROADSHEET_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli_app, ["doctor"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "BROADSHEET_DATABASE_URL" in result.output and "***" in result.output
    assert PASSWORD not in result.output
