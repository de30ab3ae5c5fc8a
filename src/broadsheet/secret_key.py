"""The key that signs session cookies and the links in mails."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from broadsheet.config import Settings, cache_dir


def secret_key(settings: Settings) -> str:
    """``BROADSHEET_SECRET_KEY``, else a random key kept beside the store (made on first use)."""
    if settings.secret_key:
        return settings.secret_key
    database = settings.database_url.removeprefix("sqlite:///")
    if settings.database_url.startswith("sqlite:///") and database not in ("", ":memory:"):
        path = Path(f"{database}.secret")
    else:
        path = cache_dir() / "secret-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f"{path.name}.part-{os.getpid()}")
        descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            os.link(scratch, path)  # atomic, and never replaces a key another process made
        except FileExistsError:
            pass
        finally:
            scratch.unlink()
    return path.read_text().strip()
