"""How ``broadsheet serve`` and ``broadsheet worker`` write their logs: lines or JSON.

``LOG_FORMAT=text`` (the default) keeps uvicorn's lines for people; ``LOG_FORMAT=json`` writes
one JSON object per record for a log collector: ``ts``, ``level``, ``logger``, ``message``, the
request's fields when the record is about one (``request_id``, ``method``, ``route``, ``path``,
``status``, ``duration_ms``, ``client``) and ``exc`` with a traceback. A record logged while a
request is served carries that request's id, so its lines can be found from the id an error
page shows. Only these fields are written: never a request's headers.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

ACCESS_LOGGER = "broadsheet.access"  # one line per request (web/request_id.py)
REQUEST_FIELDS = ("request_id", "method", "route", "path", "status", "duration_ms", "client")
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)


class JsonFormatter(logging.Formatter):
    """Each record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(self.fields(record), default=str)

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        created = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, Any] = {
            "ts": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in REQUEST_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if "request_id" not in entry and (request_id := current_request_id.get()):
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return entry


def _formatter(log_format: str) -> dict[str, Any]:
    if log_format == "json":
        return {"()": f"{__name__}.JsonFormatter"}
    return {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s %(message)s"}


def server_log_config(log_format: str, *, access_log: bool) -> dict[str, Any]:
    """uvicorn's ``log_config`` for ``serve`` (applied in every worker process).

    As uvicorn's own: its messages and the app's warnings on stderr, the request lines on
    stdout, but the request lines are the app's (with route, duration and request id), so
    uvicorn's access log stays off; ``access_log=False`` silences them.
    """
    stream = {"class": "logging.StreamHandler"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": _formatter(log_format), "access": _formatter(log_format)},
        "handlers": {
            "default": {**stream, "formatter": "default", "stream": "ext://sys.stderr"},
            "access": {**stream, "formatter": "access", "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
            ACCESS_LOGGER: {
                "handlers": ["access"],
                "level": "INFO" if access_log else "WARNING",
                "propagate": False,
            },
        },
        "root": {"handlers": ["default"], "level": "WARNING"},
    }


def log_handler(log_format: str, console: Console) -> logging.Handler:
    """The worker's handler: rich lines on ``console``, or JSON lines on stderr."""
    if log_format == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        return handler
    from rich.logging import RichHandler

    return RichHandler(console=console)


def say(log_format: str, text: str, console: Console) -> None:
    """A line for whoever starts the command: printed, or as a JSON record among the logs."""
    if log_format == "json":
        record = logging.makeLogRecord({"name": "broadsheet", "levelname": "INFO", "msg": text})
        print(JsonFormatter().format(record), file=sys.stderr, flush=True)
    else:
        console.print(text, highlight=False)
