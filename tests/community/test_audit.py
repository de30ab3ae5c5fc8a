"""The admin audit log: an entry per action, kept with the action's transaction, and kept when
the admin's account is deleted."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, delete

from broadsheet.community.accounts import create_member
from broadsheet.community.audit import admin_actions, record_admin_action
from broadsheet.db.schema import users

PASSWORD = "long enough password"


def test_entries_say_who_did_what_to_what_newest_first(store: Engine) -> None:
    admin = create_member(store, "ada", PASSWORD, is_admin=True)
    with store.begin() as connection:
        record_admin_action(connection, admin.id, "member.disable", "user:2", {"reason": "spam"})
        record_admin_action(connection, admin.id, "paper.unhide", "paper:2401.00001")
    with store.connect() as connection:
        (newest, oldest), total = admin_actions(connection, 10)
        assert total == 2
        assert (newest.action, newest.target, newest.detail) == (
            "paper.unhide",
            "paper:2401.00001",
            {},
        )
        assert (oldest.actor, oldest.detail) == ("ada", {"reason": "spam"})
        assert admin_actions(connection, 1, 1)[0] == [oldest]


def test_an_action_undone_leaves_no_entry(store: Engine) -> None:
    admin = create_member(store, "ada", PASSWORD, is_admin=True)
    with pytest.raises(RuntimeError), store.begin() as connection:
        record_admin_action(connection, admin.id, "member.delete", "user:2")
        raise RuntimeError("the deletion failed")
    with store.connect() as connection:
        assert admin_actions(connection, 10) == ([], 0)


def test_an_entry_outlives_its_admins_account(store: Engine) -> None:
    admin = create_member(store, "ada", PASSWORD, is_admin=True)
    with store.begin() as connection:
        record_admin_action(connection, admin.id, "member.make_admin", "user:3")
        connection.execute(delete(users).where(users.c.id == admin.id))
    with store.connect() as connection:
        (entry,), _ = admin_actions(connection, 10)
    assert (entry.actor_id, entry.actor, entry.action) == (None, None, "member.make_admin")
