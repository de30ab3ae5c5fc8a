"""The trending score: votes discounted by age, as on news aggregators.

    score = votes / (age_hours + 2) ** GRAVITY

``votes`` is the paper's upvotes (imported plus members'); ``age_hours`` runs from the start of
the day the paper was put on the feed to the moment the view is about: now for a period that
includes today, else the end of the period viewed, so an old week ranks as it did that week.
With GRAVITY 1.5, at noon a paper from yesterday needs (38 / 14) ** 1.5 ≈ 4.5 times the votes
of one from today to rank level with it. Papers without votes score 0 (ties: newest first).
"""

from __future__ import annotations

from datetime import date, datetime, time

GRAVITY = 1.5
OFFSET_HOURS = 2.0


def trending_score(votes: int, featured_on: date, as_of: datetime) -> float:
    start = datetime.combine(featured_on, time())
    age_hours = max(0.0, (as_of - start).total_seconds() / 3600)
    return max(votes, 0) / (age_hours + OFFSET_HOURS) ** GRAVITY
