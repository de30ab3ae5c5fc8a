"""Account mail sent after the answer, on a thread of its own.

A page that may mail (a password reset, an address to verify) answers at once and leaves the
work to this queue: looking up the account, making the link and talking to the mail server.
So no answer waits on the mail server, fails with it, or takes longer when an account exists.
The request thread pool is never held either: one thread per process works through the jobs
in order, and stops when none is left (the next job starts it again).

The queue is bounded: with ``BACKLOG`` jobs waiting (a mail server that hangs), a new job is
dropped with a warning rather than kept without end. Jobs live in memory: those still waiting
when the process stops are lost, and the member asks again. Each job logs its own failures;
one that raises anyway is logged by name only, never with its arguments (links, addresses).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

BACKLOG = 200

log = logging.getLogger(__name__)


class MailQueue:
    """Jobs run one after another on a thread that lives while there is work."""

    def __init__(self, backlog: int = BACKLOG):
        self.backlog = backlog
        self._jobs: deque[tuple[str, Callable[[], None]]] = deque()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy = False  # a thread is running (a job, or about to take one)

    def submit(self, name: str, job: Callable[[], None]) -> bool:
        """Queue ``job`` (``name`` says what it is, in logs); False when it was dropped."""
        with self._lock:
            if len(self._jobs) >= self.backlog:
                log.warning("%s not sent: %d mails wait already", name, len(self._jobs))
                return False
            self._jobs.append((name, job))
            if not self._busy:
                self._busy = True
                threading.Thread(target=self._work, name="account-mail", daemon=True).start()
        return True

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._jobs:
                    self._busy = False
                    self._idle.notify_all()
                    return
                name, job = self._jobs.popleft()
            try:
                job()
            except Exception as exc:  # a job's failure must not end the queue
                log.error("%s failed: %s", name, type(exc).__name__)

    def wait(self, timeout: float) -> bool:
        """Until every queued job is done (True), or ``timeout`` seconds have passed."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._busy or self._jobs:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True


QUEUE = MailQueue()  # one per process: every app in it shares the thread


def send_later(name: str, job: Callable[[], None]) -> bool:
    """Queue ``job`` on the process's queue (see ``MailQueue.submit``)."""
    return QUEUE.submit(name, job)
