"""A real SMTP server in-process (aiosmtpd) that keeps what it receives, or refuses on cue."""

from __future__ import annotations

import contextlib
import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from helpers import free_port


@dataclass
class SmtpSink:
    host: str = "127.0.0.1"
    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)  # the next DATA replies, e.g. "451 ..."

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.replies:
            return self.replies.pop(0)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(message)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


@contextmanager
def smtp_sink(sink: SmtpSink | None = None) -> Iterator[SmtpSink]:
    sink = sink or SmtpSink()
    sink.port = sink.port or free_port()
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@contextmanager
def silent_smtp() -> Iterator[tuple[str, int]]:
    """A mail server that hangs: it takes every connection and never says a word (not even
    the greeting), until the block ends; yields its host and port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    held: list[socket.socket] = []
    done = threading.Event()

    def take() -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[:2]
    finally:
        done.set()
        thread.join(5)
        listener.close()
        for connection in held:
            connection.close()
