"""LOG_FORMAT=json: one JSON object per line, from `serve` (tests/web/test_access_log.py) and
from `worker`."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time

from sqlalchemy import Engine

from broadsheet.logs import ACCESS_LOGGER, JsonFormatter, server_log_config
from helpers import run_env


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "broadsheet.x", "levelname": "WARNING", **extra})
    record.msg = message
    return record


def test_a_record_is_one_line_of_json_however_many_lines_it_holds() -> None:
    try:
        raise ValueError("first\nsecond")
    except ValueError:
        record = _record("two\nlines %s", args=("and a quote \"'",), exc_info=sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "two\nlines and a quote \"'"
    assert (entry["level"], entry["logger"]) == ("WARNING", "broadsheet.x")
    assert entry["exc"].startswith("Traceback") and "ValueError: first\nsecond" in entry["exc"]


def test_only_the_request_fields_are_written() -> None:
    record = _record("GET /", request_id="r1", status=200, headers={"authorization": "Bearer x"})
    entry = json.loads(JsonFormatter().format(record))
    assert entry["request_id"] == "r1" and entry["status"] == 200
    assert "headers" not in entry and "Bearer" not in json.dumps(entry)


def test_no_access_log_silences_the_request_lines_only() -> None:
    quiet = server_log_config("json", access_log=False)["loggers"]
    assert quiet[ACCESS_LOGGER]["level"] == "WARNING" and quiet["uvicorn.error"]["level"] == "INFO"
    text = server_log_config("text", access_log=True)
    assert text["loggers"][ACCESS_LOGGER]["level"] == "INFO"
    assert text["formatters"]["default"]["()"] == "uvicorn.logging.DefaultFormatter"


def test_the_worker_logs_json_lines(store: Engine, database_url: str) -> None:
    env = {**run_env(database_url), "BROADSHEET_LOG_FORMAT": "json"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "broadsheet.cli", "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert worker.stdout is not None
        first = worker.stdout.readline()  # the banner: the worker has started
        time.sleep(1)
    finally:
        worker.send_signal(signal.SIGINT)
        rest, _ = worker.communicate(timeout=30)
    lines = [json.loads(line) for line in (first + rest).splitlines() if line.strip()]
    assert lines[0]["message"].startswith("worker: harvesting ")
    assert all({"ts", "level", "logger", "message"} <= line.keys() for line in lines)
