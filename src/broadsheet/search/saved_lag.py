"""How far an index saved beside the store (a large SQLite store's files) is behind it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SavedLag:
    """What a saved index holds, and what the store gained since: searched the slow way (an
    exact scan, or FTS5) until the next ``broadsheet index`` saves it in."""

    held: int  # papers (or vectors) the saved index holds; 0: none saved, though one is due
    behind: int  # papers (or vectors) added or changed since it was saved
    most: int  # behind by more than this, searches lose much of what saving bought them

    @property
    def stale(self) -> bool:
        return self.held == 0 or self.behind > self.most
