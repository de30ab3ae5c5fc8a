"""argon2id password hashes, a few at a time per process.

Every hash or check holds argon2's 64 MiB of memory (``memory_cost``) and up to four threads
(``parallelism``) for about 50 ms. Unbounded, a burst of 120 sign-ins held a hundred of them at
once: one worker grew from 1.3 to 5.9 GB and the median sign-in took 29 s. Here at most
``HASH_SLOTS`` run at once in a process; an attempt that finds no slot free within
``WAIT_SECONDS`` is refused with ``HasherBusy`` before any hashing (the web answers 503 with
Retry-After), so memory stays flat and a flood cannot queue up without end.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# Two at once keep eight cores busy (four threads each), sign in ~40 members a second on a
# server (~50 ms a hash) and add at most 128 MiB to a worker, which stays under 1.5 GB even
# with the search model loaded (1.3 GB).
HASH_SLOTS = max(1, min(2, os.cpu_count() or 1))
WAIT_SECONDS = 0.25  # a short queue smooths a burst; a waiting request holds a server thread
RETRY_AFTER_SECONDS = 5

_hasher = PasswordHasher()
_slots = threading.BoundedSemaphore(HASH_SLOTS)
# Checking against this keeps "no such member" as slow as "wrong password".
_DUMMY_HASH = _hasher.hash("an unguessable placeholder password")


class HasherBusy(Exception):
    """Every hashing slot stayed taken for ``WAIT_SECONDS``: nothing was hashed."""

    retry_after = RETRY_AFTER_SECONDS

    def __init__(self) -> None:
        super().__init__("The site is busy signing people in: try again in a few seconds.")


@contextmanager
def hashing_slot() -> Iterator[None]:
    """Hold one of the process's hashing slots, or raise HasherBusy after a short wait."""
    if not _slots.acquire(timeout=WAIT_SECONDS):
        raise HasherBusy
    try:
        yield
    finally:
        _slots.release()


def hash_password(password: str) -> str:
    with hashing_slot():
        return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; with no hash (no such member) it costs the same and fails."""
    with hashing_slot():
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
        except (VerificationError, InvalidHashError):
            return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's (cheap: no hashing)."""
    return _hasher.check_needs_rehash(password_hash)
