"""The ``broadsheet`` command end to end (in-process via typer's runner)."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from broadsheet.cli import app


def test_import_then_stats(cli: CliRunner, fixtures: Path) -> None:
    result = cli.invoke(app, ["import", str(fixtures / "daily_papers" / "good.json")])
    assert result.exit_code == 0, result.output
    assert "added" in result.output and "3" in result.output
    result = cli.invoke(app, ["stats"])
    assert result.exit_code == 0, result.output
    assert "papers" in result.output
    assert "feed entries" in result.output and "3 on 2 days" in result.output
    assert "cartesia-ai" not in result.output  # stats lists counts, not names
    assert "organisations" in result.output


def test_bad_record_aborts_with_location(cli: CliRunner, fixtures: Path) -> None:
    path = fixtures / "arxiv_snapshot" / "malformed.jsonl"
    result = cli.invoke(app, ["import", str(path)])
    assert result.exit_code == 1
    assert f"{path}:2: not valid JSON" in result.output
    assert "--on-error skip" in result.output


def test_skip_reports_errors_and_exits_nonzero(cli: CliRunner, fixtures: Path) -> None:
    result = cli.invoke(
        app, ["import", "--on-error", "skip", str(fixtures / "arxiv_snapshot" / "malformed.jsonl")]
    )
    assert result.exit_code == 1
    assert ":4: field 'title': missing" in result.output


def test_unknown_format_option(cli: CliRunner, fixtures: Path) -> None:
    result = cli.invoke(
        app, ["import", "--format", "csv", str(fixtures / "daily_papers" / "good.json")]
    )
    assert result.exit_code != 0
    assert "unknown format" in result.output


def test_missing_file(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(app, ["import", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_index_search_and_similar(cli: CliRunner, fixtures: Path) -> None:
    import orjson

    assert (
        cli.invoke(app, ["import", str(fixtures / "daily_papers" / "topics.json")]).exit_code == 0
    )
    not_indexed = cli.invoke(app, ["similar", "2401.00003"])
    assert not_indexed.exit_code == 0 and "broadsheet index" in not_indexed.output
    keyword_only = cli.invoke(app, ["search", "pooling"])
    assert keyword_only.exit_code == 0
    assert "broadsheet index" in keyword_only.output  # says semantic search is not ready
    indexed = cli.invoke(app, ["index"])
    assert indexed.exit_code == 0, indexed.output
    assert "embedded now" in indexed.output and "12" in indexed.output
    assert "embedded, for reranking" in indexed.output
    result = cli.invoke(app, ["search", "protein folding", "--json", "--limit", "3"])
    assert result.exit_code == 0, result.output
    payload = orjson.loads(result.stdout)
    assert payload["mode"] == "hybrid" and payload["notice"] is None
    assert payload["results"][0]["id"] == "2401.00004"
    assert payload["results"][0]["links"]["pdf"] == "https://arxiv.org/pdf/2401.00004"
    explained = cli.invoke(app, ["search", "protein folding", "--explain", "--limit", "1"])
    assert "best sentence" in explained.output and "fused score" in explained.output
    as_json = cli.invoke(app, ["search", "protein folding", "--json", "--explain", "--limit", "1"])
    assert orjson.loads(as_json.stdout)["results"][0]["explain"]["rerank"] is not None
    assert "explain" not in payload["results"][0]
    filtered = cli.invoke(app, ["search", "images", "--organisation", "diffusionlab", "--json"])
    assert [r["id"] for r in orjson.loads(filtered.stdout)["results"]] == ["2401.00003"]
    similar = cli.invoke(app, ["similar", "arXiv:2401.00003v1", "--limit", "2", "--json"])
    assert similar.exit_code == 0, similar.output
    assert "2401.00003" not in [p["id"] for p in orjson.loads(similar.stdout)]
    assert cli.invoke(app, ["similar", "9999.99999"]).exit_code == 1
    bad = cli.invoke(app, ["search", "x", "--sort", "sideways"])
    assert bad.exit_code == 2


def test_users_create_and_admin(cli: CliRunner, database_url: str) -> None:
    from broadsheet.community.accounts import authenticate
    from broadsheet.db.engine import open_store

    created = cli.invoke(
        app, ["users", "create", "root", "--admin"], input="secret pass\nsecret pass\n"
    )
    assert created.exit_code == 0, created.output
    assert "created root (admin)" in created.output
    engine = open_store(database_url)
    assert authenticate(engine, "root", "secret pass").is_admin
    again = cli.invoke(app, ["users", "create", "ROOT"], input="other pass\nother pass\n")
    assert again.exit_code == 1 and "taken" in again.output
    revoked = cli.invoke(app, ["users", "admin", "root", "--revoke"])
    assert revoked.exit_code == 0 and "no longer an admin" in revoked.output
    assert not authenticate(engine, "root", "secret pass").is_admin
    missing = cli.invoke(app, ["users", "admin", "nobody"])
    assert missing.exit_code == 1 and "No member" in missing.output


def test_digest_send_and_dry_run(
    cli: CliRunner, database_url: str, fixtures: Path, smtp, monkeypatch
) -> None:
    from sqlalchemy import update

    from broadsheet.db.engine import open_store
    from broadsheet.db.schema import subscribers
    from broadsheet.digest.subscriptions import add_subscriber

    monkeypatch.setenv("BROADSHEET_SMTP_HOST", smtp.host)
    monkeypatch.setenv("BROADSHEET_SMTP_PORT", str(smtp.port))
    engine = open_store(database_url)
    imported = cli.invoke(app, ["import", str(fixtures / "daily_papers" / "good.json")])
    assert imported.exit_code == 0, imported.output
    add_subscriber(engine, "reader@example.org")
    with engine.begin() as connection:
        connection.execute(update(subscribers).values(status="confirmed"))
    day = engine.connect().exec_driver_sql("SELECT max(day) FROM feed_entries").scalar_one()

    preview = cli.invoke(app, ["digest", "send", "--date", str(day), "--dry-run"])
    assert preview.exit_code == 0, preview.output
    assert "1 confirmed daily subscribers; 1 digests with papers" in preview.output
    assert smtp.messages == []

    sent = cli.invoke(app, ["digest", "send", "--date", str(day)])
    assert sent.exit_code == 0, sent.output
    assert [m["To"] for m in smtp.messages] == ["reader@example.org"]
    again = cli.invoke(app, ["digest", "send", "--date", str(day)])
    assert again.exit_code == 0 and len(smtp.messages) == 1
    assert cli.invoke(app, ["digest", "send", "--period", "hourly"]).exit_code == 2


def test_cite_writes_bibtex_and_ris_in_the_order_asked(cli: CliRunner, fixtures: Path) -> None:
    import bibtexparser
    import rispy

    cli.invoke(app, ["import", str(fixtures / "daily_papers" / "good.json")])
    result = cli.invoke(app, ["cite", "arXiv:2312.00752v2", "2312.00001"])
    assert result.exit_code == 1 and "not in this store: 2312.00001" in result.output
    ids = ["https://arxiv.org/abs/2312.00752", "2312.00752"]
    result = cli.invoke(app, ["cite", *ids])
    assert result.exit_code == 0, result.output
    entries = bibtexparser.parse_string(result.output).entries
    assert [e["eprint"] for e in entries] == ["2312.00752", "2312.00752"]
    assert entries[0].key != entries[1].key
    result = cli.invoke(app, ["cite", "--format", "ris", "2312.00752"])
    assert result.exit_code == 0, result.output
    [record] = rispy.loads(result.output)
    assert record["accession_number"] == "arXiv:2312.00752"


def test_serve_on_another_port_mails_links_to_that_port(store, database_url: str, smtp) -> None:
    import re

    import httpx

    from helpers import free_port
    from test_serve_proxy import serving

    port = free_port()
    mail = {"BROADSHEET_SMTP_HOST": smtp.host, "BROADSHEET_SMTP_PORT": str(smtp.port)}
    with serving(database_url, port=port, env=mail) as url, httpx.Client(base_url=url) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text).group(1)
        data = {"email": "reader@example.org", "frequency": "daily", "csrf_token": token}
        assert client.post("/subscribe", data=data).status_code == 200
    [message] = smtp.messages
    body = message.get_body(("plain",)).get_content()
    assert f"http://localhost:{port}/subscribe/confirm?token=" in body


def test_search_answers_as_the_site_does_from_a_fresh_process(
    cli: CliRunner, fixtures: Path, database_url: str
) -> None:
    """A misspelled query: the correction the site shows, and search by meaning at once."""
    import subprocess
    import sys

    import orjson
    from fastapi.testclient import TestClient

    from broadsheet.config import Settings
    from broadsheet.web.app import create_app
    from helpers import run_env

    cli.invoke(app, ["import", str(fixtures / "daily_papers" / "topics.json")])
    assert cli.invoke(app, ["index"]).exit_code == 0
    query = "robust lerning"

    def search(*options: str) -> str:
        command = [sys.executable, "-m", "broadsheet.cli", "search", query, *options]
        done = subprocess.run(
            command, env=run_env(database_url), capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert "warming up" not in done.stdout + done.stderr
        return done.stdout

    printed = search("--limit", "3")
    assert "Showing results for robust learning" in printed and "(hybrid)" in printed
    payload = orjson.loads(search("--json", "--limit", "3"))
    assert payload["corrected_query"] == "robust learning" and payload["mode"] == "hybrid"
    assert "Showing results for" not in search("--exact", "--limit", "3")
    site = TestClient(create_app(Settings(database_url=database_url, secret_key="test")))
    page = site.get("/search", params={"q": query}).text
    assert "Showing results for <b>robust learning</b>" in page
    first = re.search(r'<article class="card" id="paper-([^"]+)"', page).group(1)
    assert payload["results"][0]["id"] == first


def test_index_progress_and_summary_give_one_rate(cli: CliRunner, fixtures: Path) -> None:
    cli.invoke(app, ["import", str(fixtures / "daily_papers" / "topics.json")])
    result = cli.invoke(app, ["index"])
    assert result.exit_code == 0, result.output
    bar = float(re.search(r"12/12\s+([\d.,]+) papers/s", result.output).group(1))
    summary = float(re.search(r"papers/s\s*│\s*([\d.,]+)", result.output).group(1))
    assert bar == summary > 0
