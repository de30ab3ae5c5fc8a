"""A TCP forwarder that a test can cut and restore: a database server going away and back."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

Upstream = tuple[str, int] | str  # (host, port), or a Unix socket's path


def _connect(upstream: Upstream) -> socket.socket:
    if isinstance(upstream, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(upstream)
        return sock
    return socket.create_connection(upstream)


class TcpProxy:
    """Forwards connections from a local port to ``upstream`` until ``cut`` is called.

    ``cut`` closes every connection and the listening socket, so clients get "connection
    refused" as from a stopped server; ``restore`` listens on the same port again.
    """

    def __init__(self, upstream: Upstream):
        self.upstream = upstream
        self.host = "127.0.0.1"
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            doomed = [self._listener, *self._sockets] if self._listener else [*self._sockets]
            self._listener = None
            self._sockets.clear()
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # cut
                return
            try:
                server = _connect(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    server.close()
                    return
                self._sockets.update((client, server))
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)


@contextmanager
def tcp_proxy(upstream: Upstream) -> Iterator[TcpProxy]:
    proxy = TcpProxy(upstream)
    proxy.restore()
    try:
        yield proxy
    finally:
        proxy.cut()
