"""An import whose database goes away: one line on what happened and how to resume, no batch
data, the run closed as failed, and the next import resuming after the last batch stored."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest
from sqlalchemy import URL, Engine, func, select, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from broadsheet.cli import app
from broadsheet.db.schema import import_runs, papers
from databases import ON_POSTGRES
from helpers import run_env
from snapshot_gen import write_snapshot
from tcp_proxy import Upstream, tcp_proxy

RECORDS = 3000
BATCH = 200


def postgres_upstream(url: URL) -> Upstream:
    """Where the server of ``url`` listens: its Unix socket, or its host and port."""
    port = url.port or 5432
    socket_dir = url.query.get("host")
    if socket_dir:
        return f"{socket_dir}/.s.PGSQL.{port}"
    return (url.host or "localhost", port)


def runs(store: Engine) -> list[tuple[str, int]]:
    with store.connect() as connection:
        query = select(import_runs.c.status, import_runs.c.resume_line).order_by(import_runs.c.id)
        return [tuple(row) for row in connection.execute(query)]


def wait_for_checkpoint(store: Engine, child: subprocess.Popen, line: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        if any(stored >= line for _, stored in runs(store)):
            return
        time.sleep(0.02)
    raise AssertionError(f"the import did not store {line} records while running")


@pytest.mark.skipif(not ON_POSTGRES, reason="a database server that goes away and comes back")
def test_an_import_that_loses_its_database_stops_in_one_line_and_resumes(
    store: Engine, database_url: str, tmp_path: Path
) -> None:
    snapshot = write_snapshot(tmp_path / "snap.jsonl", RECORDS)
    ids = [orjson.loads(line)["id"].encode() for line in snapshot.read_bytes().splitlines()]
    command = [
        sys.executable, "-m", "broadsheet.cli", "import", str(snapshot), "--batch-size", str(BATCH),
    ]  # fmt: skip
    url = make_url(database_url)
    with tcp_proxy(postgres_upstream(url)) as proxy:
        through_proxy = (
            url.difference_update_query(["host"])
            .set(host=proxy.host, port=proxy.port)
            .render_as_string(hide_password=False)
        )
        child = subprocess.Popen(
            command, env=run_env(through_proxy), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        wait_for_checkpoint(store, child, 3 * BATCH)
        proxy.cut()  # the server is gone: connections drop, new ones are refused
        output = child.communicate(timeout=120)[0]
        text = output.decode()
        assert child.returncode == 1, text
        assert len(output) < 600, text  # one line, not a traceback holding the batch
        assert "Traceback" not in text and "[SQL" not in text
        assert not any(paper_id in output for paper_id in ids)
        [(status, checkpoint)] = runs(store)
        assert status == "running"  # nobody could close it: the database was unreachable
        assert 3 * BATCH <= checkpoint < RECORDS
        said = re.search(
            rf"import stopped: the database at {proxy.host}:{proxy.port} is unreachable "
            r"\(connection refused\); run the same command again to resume after record "
            r"(\d+)\n",
            " ".join(text.split()) + "\n",
        )
        assert said, text
        # the last batch stored, or the one before when the cut fell on its commit's answer
        assert int(said[1]) in (checkpoint, checkpoint - BATCH)

        proxy.restore()  # the database is back
        again = subprocess.run(
            command, env=run_env(through_proxy), capture_output=True, text=True, timeout=300
        )
    assert again.returncode == 0, again.stderr
    assert re.search(rf"resumed after record\W+{checkpoint}\b", again.stderr), again.stderr
    assert re.search(r"closed as failed\W+run 1, left running", again.stderr), again.stderr
    assert runs(store) == [("failed", checkpoint), ("done", RECORDS)]
    with store.connect() as connection:
        assert connection.execute(select(func.count()).select_from(papers)).scalar_one() == RECORDS


def terminate_the_blocked_batch(store: Engine, lines: int) -> None:
    """Hold the import's run row once ``lines`` are stored, so the next batch waits on it at
    its checkpoint; end that batch's connection from the server, then let go."""
    deadline = time.monotonic() + 120
    while not any(stored >= lines for _, stored in runs(store)):
        assert time.monotonic() < deadline, "the import stored nothing"
        time.sleep(0.02)
    with store.connect() as connection, connection.begin():
        connection.execute(select(import_runs.c.id).with_for_update())
        waiting = text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
        while not (blocked := connection.execute(waiting).scalars().all()):
            assert time.monotonic() < deadline, "no batch waited on the run row"
            time.sleep(0.02)
        for pid in blocked:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


@pytest.mark.skipif(not ON_POSTGRES, reason="a server that ends the import's connection")
def test_a_connection_ended_by_the_server_closes_the_run_as_failed_at_once(
    store: Engine, cli: CliRunner, tmp_path: Path
) -> None:
    snapshot = write_snapshot(tmp_path / "snap.jsonl", 2000)
    command = ["import", str(snapshot), "--batch-size", str(BATCH)]
    with ThreadPoolExecutor(1) as pool:
        terminated = pool.submit(terminate_the_blocked_batch, store, 2 * BATCH)
        result = cli.invoke(app, command)
        terminated.result(timeout=60)
    assert result.exit_code == 1, result.output
    [(status, checkpoint)] = runs(store)
    assert status == "failed"  # closed by the import itself: the server still answers
    said = " ".join(result.output.split())
    assert re.search(
        r"import stopped: the connection to the database at \S+ was lost \(terminating "
        rf"connection due to administrator command\); run the same command again to resume "
        rf"after record {checkpoint}\b",
        said,
    ), result.output
    assert len(result.output) < 600 and "Traceback" not in result.output

    again = cli.invoke(app, command)
    assert again.exit_code == 0, again.output
    assert runs(store) == [("failed", checkpoint), ("done", 2000)]
