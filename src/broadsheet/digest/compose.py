"""One subscriber's digest for one period: the trending papers and those matching their topics.

Papers a subscriber was sent before are left out. The message has plain-text and HTML parts
(inline styles only, as mail clients want), the RFC 8058 one-click unsubscribe headers, and a
Message-ID fixed per subscriber and period, so a copy sent twice is recognisably the same mail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import formatdate
from html import escape
from typing import Any

from broadsheet.config import Settings
from broadsheet.digest.confirmation import unsubscribe_url
from broadsheet.digest.subscriptions import Frequency, Subscriber
from broadsheet.feed.periods import Period, Window, window

TRENDING = 10
UNFOLDED = compat32.clone(max_line_length=998)  # one-line List-Unsubscribe (RFC 5322's limit)
PER_TOPIC = 5
FOR_YOU = 5
FOLLOWING = 10


@dataclass(slots=True)
class DigestSection:
    title: str
    papers: list[dict[str, Any]]
    reasons: list[str] = field(default_factory=list)  # one line per paper (may be empty)


@dataclass(slots=True)
class Digest:
    subscriber: Subscriber
    period_key: str
    window: Window
    sections: list[DigestSection]

    @property
    def paper_ids(self) -> list[str]:
        return [p["id"] for section in self.sections for p in section.papers]


def feed_period(frequency: Frequency) -> Period:
    """The feed period a digest of this frequency covers."""
    return Period.daily if frequency == Frequency.daily else Period.weekly


def period_window(frequency: Frequency, day: date) -> Window:
    return window(feed_period(frequency), day)


def period_key(frequency: Frequency, day: date) -> str:
    if frequency == Frequency.daily:
        return day.isoformat()
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def build_digest(
    subscriber: Subscriber,
    day: date,
    trending: list[dict[str, Any]],
    topics: dict[str, list[dict[str, Any]]],
    already_sent: set[str],
    for_you: tuple[list[dict[str, Any]], list[str]] = ([], []),
    following: tuple[list[dict[str, Any]], list[str]] = ([], []),
) -> Digest:
    """Choose the papers: trending first, then each topic's matches, then new papers by whom
    the member follows, then the member's picks.

    A paper appears once, in the first section that has it, and never if sent before.
    """
    shown = set(already_sent)
    picked = [p for p in trending if p["id"] not in shown][:TRENDING]
    shown.update(p["id"] for p in picked)
    sections = [DigestSection("Trending", picked)] if picked else []
    for topic, matches in topics.items():
        fresh = [p for p in matches if p["id"] not in shown][:PER_TOPIC]
        shown.update(p["id"] for p in fresh)
        if fresh:
            reasons = [f"matches your topic “{topic}”"] * len(fresh)
            sections.append(DigestSection(f"Matching “{topic}”", fresh, reasons))
    theirs, why_theirs = following
    fresh = [(p, r) for p, r in zip(theirs, why_theirs, strict=True) if p["id"] not in shown]
    fresh = fresh[:FOLLOWING]
    shown.update(p["id"] for p, _ in fresh)
    if fresh:
        sections.append(
            DigestSection("From people you follow", [p for p, _ in fresh], [r for _, r in fresh])
        )
    picks, why = for_you
    chosen = [(p, r) for p, r in zip(picks, why, strict=True) if p["id"] not in shown][:FOR_YOU]
    if chosen:
        sections.append(DigestSection("For you", [p for p, _ in chosen], [r for _, r in chosen]))
    return Digest(
        subscriber,
        period_key(subscriber.frequency, day),
        period_window(subscriber.frequency, day),
        sections,
    )


def _paper_url(settings: Settings, paper_id: str) -> str:
    return f"{settings.base_url.rstrip('/')}/papers/{paper_id}"


def _votes(paper: dict[str, Any]) -> int:
    return paper.get("votes", paper.get("upvotes", 0) + paper.get("member_votes", 0))


def _dated(paper: dict[str, Any]) -> str:
    """The paper's publication date after its votes, as " · 1 Dec 2026" (topic matches may be
    days old); nothing for a paper without one."""
    published = paper.get("published_at")
    if not isinstance(published, datetime | date):
        return ""
    return f" · {published.day} {published:%b %Y}"


def _abstract(paper: dict[str, Any], limit: int = 280) -> str:
    text = " ".join((paper.get("abstract") or "").split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _text_body(digest: Digest, settings: Settings, unsubscribe: str) -> str:
    lines = [f"{settings.site_name}: {digest.window.label}", ""]
    for section in digest.sections:
        lines += [section.title.upper(), ""]
        for index, paper in enumerate(section.papers):
            lines.append(f"▲ {_votes(paper)}{_dated(paper)}  {paper['title']}")
            if index < len(section.reasons):
                lines.append(f"   ({section.reasons[index]})")
            lines += [f"   {_paper_url(settings, paper['id'])}", ""]
    lines += ["--", f"Unsubscribe: {unsubscribe}"]
    return "\n".join(lines) + "\n"


def _html_body(digest: Digest, settings: Settings, unsubscribe: str) -> str:
    parts = [
        '<!doctype html><html><body style="margin:0;padding:16px;background:#f9fafb;'
        'font-family:system-ui,-apple-system,Segoe UI,sans-serif;color:#1f2328">',
        '<div style="max-width:600px;margin:0 auto;background:#fff;border:1px solid #e5e7eb;'
        'border-radius:8px;padding:16px">',
        f'<h1 style="font-size:20px;margin:0 0 12px">{escape(settings.site_name)}: '
        f"{escape(digest.window.label)}</h1>",
    ]
    for section in digest.sections:
        parts.append(f'<h2 style="font-size:16px;margin:16px 0 8px">{escape(section.title)}</h2>')
        for index, paper in enumerate(section.papers):
            url = escape(_paper_url(settings, paper["id"]))
            reason = section.reasons[index] if index < len(section.reasons) else ""
            parts.append(
                '<div style="border-top:1px solid #e5e7eb;padding:8px 0">'
                f'<a href="{url}" style="color:#1f2328;font-weight:600;text-decoration:none">'
                f"{escape(paper['title'])}</a>"
                f'<div style="color:#6b7280;font-size:13px">▲ {_votes(paper)}{_dated(paper)}'
                + (f" · {escape(reason)}" if reason else "")
                + f' · <a href="{url}?save=1#save" style="color:#6b7280">Save</a>'
                + "</div>"
                f'<p style="margin:4px 0 0;font-size:14px;color:#374151">'
                f"{escape(_abstract(paper))}</p></div>"
            )
    parts.append(
        '<p style="color:#6b7280;font-size:12px;margin-top:16px">'
        f'<a href="{escape(unsubscribe)}" style="color:#6b7280">Unsubscribe</a> '
        "(one click, no sign-in)</p></div></body></html>"
    )
    return "".join(parts)


def digest_message(digest: Digest, settings: Settings, secret: str) -> Message:
    """The digest as a multipart/alternative mail.

    Built with the classic ``email.mime`` classes: they serialise several times faster than
    ``EmailMessage``, which matters at thousands of digests per send. Bodies are UTF-8 in
    base64, which every mail server carries.
    """
    unsubscribe = unsubscribe_url(settings, secret, digest.subscriber)
    message = MIMEMultipart("alternative", policy=UNFOLDED)
    subject = f"{settings.site_name}: trending papers, {digest.window.label}"
    message["Subject"] = subject if subject.isascii() else Header(subject, "utf-8").encode()
    message["From"] = settings.mail_from
    message["To"] = digest.subscriber.email
    message["Message-ID"] = (
        f"<digest-{digest.subscriber.id}-{digest.period_key}@{_domain(settings)}>"
    )
    message["List-Unsubscribe"] = f"<{unsubscribe}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message["Precedence"] = "bulk"
    message["Date"] = formatdate(localtime=False)
    message.attach(MIMEText(_text_body(digest, settings, unsubscribe), "plain", "utf-8"))
    message.attach(MIMEText(_html_body(digest, settings, unsubscribe), "html", "utf-8"))
    return message


def _domain(settings: Settings) -> str:
    host = settings.base_url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    return host or "broadsheet.local"


TopicSearch = Callable[[str, Window], list[dict[str, Any]]]
