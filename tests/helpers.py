"""Helpers shared by tests (importable because ``tests`` is on pytest's python path)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

# the shared data sits beside the repository (as in CI); tests that need it skip without it
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def run_env(database_url: str) -> dict[str, str]:
    """Environment for running ``broadsheet`` in a subprocess against ``database_url``."""
    return {**os.environ, "BROADSHEET_DATABASE_URL": database_url, "COLUMNS": "200"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


KEEP_IDLE_S = 600


@contextmanager
def live_server(app) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free local port (in a thread); yields its base URL.

    Idle connections are kept for the whole test: with uvicorn's default of 5 s, a client that
    sends on a connection at the moment the server closes it for idleness gets "Server
    disconnected", which a test that signs fifty members in before they all click can hit.
    """
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_keep_alive=KEEP_IDLE_S
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
