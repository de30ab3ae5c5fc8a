"""The settings an admin changes on the admin pages while the site runs: whether anyone may
sign up, and a notice shown on every page. Unlike the environment's settings they live in the
store, so every process of the site sees a change within ``SiteSettingsCache.SECONDS``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import SQLAlchemyError

from broadsheet.community.accounts import Member
from broadsheet.community.audit import record_admin_action
from broadsheet.community.moderation import NotAllowed
from broadsheet.db.bulk import upsert
from broadsheet.db.schema import site_settings
from broadsheet.db.version import bump_version

MAX_NOTICE = 300


class SiteSettingError(ValueError):
    """A value an admin gave is refused; ``field`` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class SiteSettings:
    signups_open: bool = True  # anyone may create an account (else admins make them)
    notice: str = ""  # one line on every page, e.g. planned maintenance


def read_site_settings(connection: Connection) -> SiteSettings:
    """The site's settings: those an admin changed, the defaults for the rest."""
    stored = dict(connection.execute(select(site_settings.c.key, site_settings.c.value)).all())
    known = {f.name for f in fields(SiteSettings)}
    return SiteSettings(**{k: v for k, v in stored.items() if k in known})


def checked(signups_open: bool, notice: str) -> SiteSettings:
    notice = " ".join(notice.split())
    if len(notice) > MAX_NOTICE:
        raise SiteSettingError(
            "notice", f"The notice is {len(notice)} characters long; at most {MAX_NOTICE}."
        )
    return SiteSettings(signups_open=signups_open, notice=notice)


def change_site_settings(engine: Engine, admin: Member | None, wanted: SiteSettings) -> list[str]:
    """Store what changed of the site's settings, recorded in the audit log; the names of
    the settings that changed."""
    if admin is None or not admin.is_admin:
        raise NotAllowed("Only admins change the site's settings.")
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine.begin() as connection:
        current = asdict(read_site_settings(connection))
        changed = {k: v for k, v in asdict(wanted).items() if current[k] != v}
        if not changed:
            return []
        for key, value in changed.items():
            stamp = {"value": value, "updated_at": now, "updated_by": admin.id}
            connection.execute(
                upsert(connection, site_settings, ["key"], stamp).values(key=key, **stamp)
            )
        before = {k: current[k] for k in changed}
        record_admin_action(connection, admin.id, "site.settings", "site",
                            {"before": before, "after": changed})  # fmt: skip
        bump_version(connection)  # cached pages show the new notice
    return sorted(changed)


class SiteSettingsCache:
    """The site's settings as this process last read them, read again after ``SECONDS``;
    while the store cannot be read, the last ones read (or the defaults)."""

    SECONDS = 5.0

    def __init__(self) -> None:
        self._value = SiteSettings()
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def get(self, engine: Engine) -> SiteSettings:
        if time.monotonic() - self._read_at < self.SECONDS:
            return self._value
        with self._lock:
            if time.monotonic() - self._read_at >= self.SECONDS:
                self._read_at = time.monotonic()  # one try per period, even when it fails
                try:
                    with engine.connect() as connection:
                        self._value = read_site_settings(connection)
                except SQLAlchemyError:  # an unreadable store: pages still draw, as they were
                    pass
        return self._value

    def forget(self) -> None:
        """Read again at the next ``get`` (after this process changed them)."""
        self._read_at = float("-inf")
