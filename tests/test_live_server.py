"""The test server keeps a connection that stays idle while other clients are set up."""

from __future__ import annotations

import socket
import time

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from helpers import live_server

REQUEST = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"


def _answer(connection: socket.socket) -> bytes:
    connection.sendall(REQUEST)
    received = b""
    while not received.endswith(b"ok"):
        chunk = connection.recv(4096)
        if not chunk:
            break
        received += chunk
    return received


def test_a_connection_idle_longer_than_uvicorns_default_still_answers() -> None:
    app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("ok"))])
    with live_server(app) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            assert _answer(connection).startswith(b"HTTP/1.1 200")
            time.sleep(5.5)  # uvicorn closes connections idle for 5 s unless told otherwise
            assert _answer(connection).startswith(b"HTTP/1.1 200")
