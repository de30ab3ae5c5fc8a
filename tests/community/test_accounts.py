from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest
from sqlalchemy import Engine, select

from broadsheet.community.accounts import (
    AccountError,
    authenticate,
    change_password,
    create_member,
    end_sessions,
    get_member,
    set_admin,
)
from broadsheet.community.passwords import (
    HASH_SLOTS,
    WAIT_SECONDS,
    HasherBusy,
    hash_password,
    hashing_slot,
)
from broadsheet.db.schema import users


def test_sign_up_stores_an_argon2id_hash_never_the_password(store: Engine) -> None:
    member = create_member(store, "ada", "correct horse battery")
    with store.connect() as connection:
        stored = connection.execute(select(users.c.password_hash)).scalar_one()
        assert get_member(connection, member.id) == member
    assert stored.startswith("$argon2id$")
    assert "correct horse battery" not in stored
    assert not member.is_admin


def test_sign_in_with_the_right_password_only(store: Engine) -> None:
    member = create_member(store, "ada", "correct horse battery")
    assert authenticate(store, "ada", "correct horse battery") == member
    assert authenticate(store, "ADA", "correct horse battery") == member  # any letter case
    with pytest.raises(AccountError, match="Wrong username or password") as wrong:
        authenticate(store, "ada", "correct horse battery!")
    with pytest.raises(AccountError, match="Wrong username or password") as unknown:
        authenticate(store, "nobody", "correct horse battery")
    assert str(wrong.value) == str(unknown.value)  # no hint which one was wrong


@pytest.mark.parametrize("username", ["ab", "-ada", "ada lovelace", "a" * 41, "ada<script>", ""])
def test_bad_usernames_are_refused_with_the_field(store: Engine, username: str) -> None:
    with pytest.raises(AccountError) as refused:
        create_member(store, username, "long enough password")
    assert refused.value.field == "username"


def test_short_passwords_are_refused(store: Engine) -> None:
    with pytest.raises(AccountError) as refused:
        create_member(store, "ada", "short")
    assert refused.value.field == "password"


def test_usernames_are_unique_in_any_letter_case(store: Engine) -> None:
    create_member(store, "Ada", "long enough password")
    with pytest.raises(AccountError, match="taken"):
        create_member(store, "ada", "another long password")
    with store.connect() as connection:
        assert connection.execute(select(users.c.username)).scalars().all() == ["Ada"]


def test_underscore_is_not_a_wildcard(store: Engine) -> None:
    create_member(store, "a_b", "long enough password")
    create_member(store, "axb", "long enough password")  # would clash if _ matched any letter
    with pytest.raises(AccountError):
        authenticate(store, "a_c", "long enough password")


def test_admin_rights_are_granted_and_revoked(store: Engine) -> None:
    create_member(store, "ada", "long enough password")
    assert set_admin(store, "ada").is_admin
    assert authenticate(store, "ada", "long enough password").is_admin
    assert not set_admin(store, "ada", False).is_admin
    with pytest.raises(AccountError, match="No member"):
        set_admin(store, "nobody")


def test_changing_the_password_replaces_the_session_key(store: Engine) -> None:
    member = create_member(store, "ada", "long enough password")
    changed = change_password(store, "ADA", "another long password")
    assert changed.session_key and changed.session_key != member.session_key
    assert authenticate(store, "ada", "another long password") == changed
    with pytest.raises(AccountError):
        authenticate(store, "ada", "long enough password")
    with pytest.raises(AccountError, match="at least"):
        change_password(store, "ada", "short")
    with pytest.raises(AccountError, match="No member"):
        change_password(store, "nobody", "another long password")


def test_ending_sessions_replaces_the_key(store: Engine) -> None:
    member = create_member(store, "ada", "long enough password")
    ended = end_sessions(store, "ada")
    assert ended.session_key != member.session_key
    with store.connect() as connection:
        assert get_member(connection, member.id).session_key == ended.session_key


def test_every_account_has_a_key_of_its_own(store: Engine) -> None:
    members = [create_member(store, f"member{i}", "long enough password") for i in range(5)]
    keys = {member.session_key for member in members}
    assert len(keys) == 5 and all(len(key) >= 32 for key in keys)


def test_hashing_is_refused_before_it_starts_when_every_slot_is_taken(store: Engine) -> None:
    create_member(store, "ada", "long enough password")
    with ExitStack() as held:
        for _ in range(HASH_SLOTS):
            held.enter_context(hashing_slot())
        started = time.monotonic()
        with pytest.raises(HasherBusy):
            authenticate(store, "ada", "long enough password")
        with pytest.raises(HasherBusy):
            authenticate(store, "nobody", "long enough password")
        with pytest.raises(HasherBusy):
            create_member(store, "bob", "long enough password")
        assert time.monotonic() - started < 3 * WAIT_SECONDS + 1
    assert authenticate(store, "ada", "long enough password").username == "ada"


def test_hashing_slots_bound_concurrent_hashes(store: Engine, monkeypatch) -> None:
    from broadsheet.community import passwords

    running, peak, lock = 0, 0, threading.Lock()
    real = passwords._hasher

    class CountingHasher:
        def hash(self, password: str) -> str:
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            try:
                time.sleep(0.05)
                return real.hash(password)
            finally:
                with lock:
                    running -= 1

    def attempt(_: int) -> str:
        try:
            return hash_password("long enough password")
        except HasherBusy:  # waited its bounded time for a slot
            return "busy"

    monkeypatch.setattr(passwords, "_hasher", CountingHasher())
    with ThreadPoolExecutor(4 * HASH_SLOTS) as pool:
        results = list(pool.map(attempt, range(4 * HASH_SLOTS)))
    assert 0 < peak <= HASH_SLOTS
    assert any(result.startswith("$argon2id$") for result in results)
