"""How the feed's trending sort ranks a period.

While a period runs (it includes today), trending is votes discounted by age, as on news
aggregators:

    score = votes / (age_hours + 2) ** GRAVITY

``votes`` is the paper's upvotes (imported plus members'); ``age_hours`` runs from the start of
the day the paper was put on the feed to now. With GRAVITY 1.5, at noon a paper from yesterday
needs (38 / 14) ** 1.5 ≈ 4.5 times the votes of one from today to rank level with it.

Once a period has ended, no paper in it is newer than another in any way that matters to a
reader looking back, so it ranks by votes alone. Ties: newest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from broadsheet.feed.periods import Window

GRAVITY = 1.5
OFFSET_HOURS = 2.0


def trending_score(votes: int, featured_on: date, as_of: datetime) -> float:
    """Votes discounted by the paper's age at ``as_of``."""
    start = datetime.combine(featured_on, time())
    age_hours = max(0.0, (as_of - start).total_seconds() / 3600)
    return max(votes, 0) / (age_hours + OFFSET_HOURS) ** GRAVITY


@dataclass(frozen=True, slots=True)
class Trending:
    """Trending for one period seen at one moment: ``now`` None once the period is over."""

    now: datetime | None

    @classmethod
    def of(cls, period: Window, now: datetime) -> Trending:
        return cls(None if period.is_over(now) else now)

    def score(self, votes: int, featured_on: date) -> float:
        if self.now is None:
            return float(max(votes, 0))
        return trending_score(votes, featured_on, self.now)

    @property
    def explained(self) -> str:
        """How the papers are ranked, in one line for the page."""
        if self.now is None:
            return "This period is over: trending ranks by upvotes alone, the same as Top."
        return "Ranked by upvotes, newer papers weigh more"
