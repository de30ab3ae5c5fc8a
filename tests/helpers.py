"""Helpers shared by tests (importable because ``tests`` is on pytest's python path)."""

from __future__ import annotations

import os


def run_env(database_url: str) -> dict[str, str]:
    """Environment for running ``broadsheet`` in a subprocess against ``database_url``."""
    return {**os.environ, "BROADSHEET_DATABASE_URL": database_url, "COLUMNS": "200"}
