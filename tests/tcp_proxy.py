"""A TCP forwarder that a test can cut and restore (a database server going away and back) or
freeze and thaw (a server that is there but does not answer)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import URL, make_url

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
    ``freeze`` keeps every connection open and accepts new ones, but passes nothing on, as a
    stopped (SIGSTOP) or hung server does; ``thaw`` passes on what was held, and goes on.
    """

    def __init__(self, upstream: Upstream):
        self.upstream = upstream
        self.host = "127.0.0.1"
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._flowing = threading.Event()
        self._flowing.set()

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

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

    def _wait_while_frozen(self, still_open: Callable[[], bool]) -> bool:
        """Hold while frozen; False when cut meanwhile (``still_open`` no longer true)."""
        while not self._flowing.wait(0.05):
            with self._lock:
                if not still_open():
                    return False
        return True

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # cut
                return
            # held, as a stopped server's backlog holds it
            if not self._wait_while_frozen(lambda: self._listener is listener):
                client.close()
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
                if not self._wait_while_frozen(lambda: source in self._sockets):
                    return
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


def postgres_upstream(url: URL) -> Upstream:
    """Where the server of ``url`` listens: its Unix socket, or its host and port."""
    port = url.port or 5432
    socket_dir = url.query.get("host")
    if socket_dir:
        return f"{socket_dir}/.s.PGSQL.{port}"
    return (url.host or "localhost", port)


@contextmanager
def postgres_proxy(database_url: str, **changes: str) -> Iterator[tuple[TcpProxy, str]]:
    """A proxy in front of ``database_url``'s server, and the URL through it (with
    ``changes``, a password say); the proxy is thawed and cut at the end."""
    url = make_url(database_url)
    with tcp_proxy(postgres_upstream(url)) as proxy:
        through = url.difference_update_query(["host"]).set(
            host=proxy.host, port=proxy.port, **changes
        )
        try:
            yield proxy, through.render_as_string(hide_password=False)
        finally:
            proxy.thaw()
