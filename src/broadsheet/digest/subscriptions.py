"""Digest subscriptions by email address, with double opt-in.

An address is stored as pending and sent a confirmation mail with a signed link that expires;
only the link confirms it. Each link names the state it was issued for (a nonce the row keeps
until the link is used, replaced, or the subscription stops), so it works once and never
after the subscription has moved on. Unsubscribing needs only the (non-expiring) link in
every mail.

A member manages their own row from their settings and nobody else's. A new address is kept
beside the current one (``pending_email``) until the link mailed to it is opened; only then
does the row move, and a row that already held the address is merged into it when the link's
proof is enough to take it (see ``_move``).

Every confirmation mail counts against the recipient, the client asking and the member
asking (``community.ratelimit``), and an address mailed a link in the last
``confirmation_cooldown_minutes`` is not mailed again.

Until the site's mail is configured (``mail_is_configured``) nothing is mailed: addresses are
kept as pending with no link, and ``claim_owed_links`` hands their links out once it is. The
same happens to a link whose mail could not be delivered.

Owed links are claimed, mailed, then marked mailed, one at a time, so a sender that dies owes
nothing but the link in its hands. While a sender holds a link, its row's nonce reads
``claim <UTC time> <tag> <nonce>`` (a random tag per claim; ``confirmation_sent_at`` stays
empty); once the mail
server has accepted the mail, the row gets the bare nonce and the time it was mailed. A claim
older than ``claim_lease`` was left by a sender that died: the next round claims that link
again, with the same nonce, so a mail that went out just before the death still works.

Letter case never makes a second subscription: every lookup by address goes through
``_at``, which compares lower-cased addresses (the store's unique index does the same).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Connection, Engine, case, func, not_, or_, select, update

from broadsheet.community import ratelimit
from broadsheet.config import Settings
from broadsheet.db.bulk import insert_ignoring_conflicts
from broadsheet.db.schema import subscribers, users
from broadsheet.digest import tokens

MAX_TOPICS = 20
CLAIMED = "claim "  # how the nonce of a link a sender is mailing starts
CLAIM_TIMEOUTS = 10  # a claim lapses after this many SMTP timeouts (see ``claim_lease``)


class InvalidEmail(ValueError):
    pass


class AddressTaken(ValueError):
    """The address is someone else's subscription, which a member's save never touches."""


class Frequency(StrEnum):
    daily = "daily"
    weekly = "weekly"


class Status(StrEnum):
    pending = "pending"
    confirmed = "confirmed"
    unsubscribed = "unsubscribed"
    paused = "paused"  # mail to it kept failing permanently


@dataclass(frozen=True, slots=True)
class Subscriber:
    id: int
    email: str
    status: Status
    frequency: Frequency
    topics: tuple[str, ...] = ()  # saved searches
    pending_email: str | None = None  # a member's new address, until its link is opened
    link_mailed: bool = False  # a confirmation link went out (or is going) for the current state


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asks for a confirmation mail: the client's address and the member, if signed in."""

    client: str
    member_id: int | None = None


@dataclass(frozen=True, slots=True)
class ConfirmationLink:
    """A confirmation mail to send: to ``address``, for ``subscriber`` in state ``nonce``;
    ``claim`` is what the row holds while a sender has the link in hand (owed links only)."""

    subscriber: Subscriber
    address: str
    nonce: str
    claim: str | None = None

    @property
    def subject(self) -> tokens.ConfirmationSubject:
        return tokens.ConfirmationSubject(self.subscriber.id, self.address, self.nonce)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What asking for a subscription did: the row, and the mail due (if any)."""

    subscriber: Subscriber | None
    link: ConfirmationLink | None = None
    # a link went to the address within the cool-down, so none is sent now
    link_sent_recently: bool = False
    # the address is kept, and its link is mailed once the site's mail is configured
    mail_waiting: bool = False


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def normalise_email(email: str) -> str:
    """The one spelling of an address that is stored, counted and mailed (or InvalidEmail).

    Exactly one addr-spec: no lists, display names, quoting or control characters. The domain
    is lower-cased and IDNA-encoded, so every spelling of one domain is one address; the local
    part must be ASCII, since not every mail relay carries SMTPUTF8.
    """
    candidate = email.strip()
    shown = candidate if len(candidate) <= 80 else candidate[:77] + "..."
    if len(candidate) > 320:
        raise InvalidEmail(f"{shown!r} is not an email address: it is too long.")
    try:
        valid = validate_email(
            candidate,
            check_deliverability=False,
            allow_smtputf8=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_display_name=False,
        )
    except EmailNotValidError as exc:
        raise InvalidEmail(f"{shown!r} is not an email address: {exc}") from exc
    return valid.ascii_email


def mailbox_key(address: str) -> str:
    """A normalised address as limits and lookups count it: nearly every mail server ignores
    case."""
    return address.lower()


def same_mailbox(one: str | None, other: str | None) -> bool:
    return one is not None and other is not None and mailbox_key(one) == mailbox_key(other)


def mail_is_configured(settings: Settings) -> bool:
    """Whether the site may send mail: its mail server was set (``BROADSHEET_SMTP_HOST``).

    The default (localhost) is only a placeholder, so nothing is sent until someone names the
    server, and pages say so instead of failing on a refused connection.
    """
    return "smtp_host" in settings.model_fields_set


def _at(address: str) -> Any:
    """The condition "the row's address is ``address``", whatever the letter case."""
    return func.lower(subscribers.c.email) == mailbox_key(address)


def _insert_new(connection: Connection, **values: Any) -> int:
    """Insert a row unless its mailbox has one already (any case); 1 when inserted."""
    statement = insert_ignoring_conflicts(
        connection, subscribers, [func.lower(subscribers.c.email)]
    ).returning(subscribers.c.id)
    return len(connection.execute(statement.values(**values)).all())


def subscriber_from_row(row: Any) -> Subscriber:
    """A ``subscribers`` row as a Subscriber."""
    topics = tuple(row.topics or ())
    return Subscriber(
        row.id, row.email, Status(row.status), Frequency(row.frequency), topics,
        row.pending_email, _link_out(row),
    )  # fmt: skip


def _link_out(row: Any) -> bool:
    """Whether a confirmation link for the row's current state was mailed or is being mailed."""
    nonce = row.confirmation_nonce
    return row.confirmation_sent_at is not None or (nonce or "").startswith(CLAIMED)


def _clean_topics(topics: list[str]) -> list[str]:
    """Blank topics dropped, each once, at most ``MAX_TOPICS``."""
    return list(dict.fromkeys(t.strip() for t in topics if t.strip()))[:MAX_TOPICS]


def _row(connection: Connection, *where: Any) -> Any:
    return connection.execute(select(subscribers).where(*where)).first()


def _link_is_live(row: Any, now: datetime, settings: Settings) -> bool:
    """Whether a link out for the row still works (or is being mailed)."""
    sent = row.confirmation_sent_at
    lifetime = timedelta(days=settings.confirm_link_days)
    if (row.confirmation_nonce or "").startswith(CLAIMED):
        return _claimed_at(row.confirmation_nonce)[0] > now - lifetime
    return row.confirmation_nonce is not None and sent is not None and sent > now - lifetime


def _is_free(row: Any, now: datetime, settings: Settings) -> bool:
    """Whether a row's address may go to whoever asks next (still to be confirmed by mail).

    Not when it is confirmed or waits on a link that still works, nor when a member owns it
    and once proved it: nobody but the address's reader may undo that.
    """
    if row.status == Status.confirmed or _link_is_live(row, now, settings):
        return False
    return row.user_id is None or row.confirmed_at is None


def _recently_mailed(connection: Connection, address: str, since: datetime) -> bool:
    """Whether any row sent a confirmation link to ``address`` after ``since``, or has one
    on its way there."""
    mailed_to = case(
        (subscribers.c.pending_email.is_not(None), subscribers.c.pending_email),
        else_=subscribers.c.email,
    )
    return (
        connection.execute(
            select(subscribers.c.id)
            .where(
                func.lower(mailed_to) == mailbox_key(address),
                subscribers.c.confirmation_nonce.is_not(None),
                # mailed, or in a sender's hands (claimed) since
                (subscribers.c.confirmation_sent_at > since)
                | (
                    subscribers.c.confirmation_nonce.startswith(CLAIMED)
                    & (subscribers.c.confirmation_nonce > _claim_of("", since, tag=""))
                ),
            )
            .limit(1)
        ).first()
        is not None
    )


def _issue_link(
    connection: Connection, row_id: int, address: str, requester: Requester, now: datetime
) -> tuple[str, str]:
    """Count a confirmation mail to ``address`` against every limit and record a new link,
    claimed for the caller to mail (``link_mailed`` records it as sent): the link and claim.

    Runs in the caller's transaction: a refused mail (RateLimited) rolls the whole change back.
    A caller that never mails it (a process killed first) leaves it owed once the claim lapses,
    and the next round of ``claim_owed_links`` mails it.
    """
    ratelimit.hit(connection, ratelimit.CONFIRMATION_MAILS_TO_ADDRESS, f"to:{mailbox_key(address)}")
    ratelimit.hit(connection, ratelimit.CONFIRMATION_MAILS_BY_CLIENT, f"client:{requester.client}")
    if requester.member_id is not None:
        ratelimit.hit(
            connection, ratelimit.CONFIRMATION_MAILS_BY_MEMBER, f"member:{requester.member_id}"
        )
    nonce = secrets.token_urlsafe(24)
    claim = _claim_of(nonce, now)
    connection.execute(
        update(subscribers)
        .where(subscribers.c.id == row_id)
        .values(confirmation_nonce=claim, confirmation_sent_at=None)
    )
    return nonce, claim


def _cooldown_start(settings: Settings, now: datetime) -> datetime:
    return now - timedelta(minutes=settings.confirmation_cooldown_minutes)


def _request_link(
    connection: Connection,
    settings: Settings,
    row_id: int,
    address: str,
    requester: Requester,
    now: datetime,
) -> Outcome:
    """The link due to ``address`` for row ``row_id``, unless the address is cooling down.

    Without mail, no link: the row waits (``confirmation_sent_at`` empty) for
    ``claim_owed_links``, and a move to a new address is recorded all the same.
    """
    row = _row(connection, subscribers.c.id == row_id)
    if same_mailbox(row.email, address):
        address = row.email  # the spelling first stored stays
    if not mail_is_configured(settings):
        waiting = {"confirmation_nonce": None, "confirmation_sent_at": None}
        if row.email != address:
            waiting["pending_email"] = address
        connection.execute(update(subscribers).where(subscribers.c.id == row_id).values(waiting))
        row = _row(connection, subscribers.c.id == row_id)
        return Outcome(subscriber_from_row(row), mail_waiting=True)
    if _recently_mailed(connection, address, _cooldown_start(settings, now)):
        return Outcome(subscriber_from_row(row), link_sent_recently=True)
    nonce, claim = _issue_link(connection, row_id, address, requester, now)
    row = _row(connection, subscribers.c.id == row_id)
    if row.email != address:
        connection.execute(
            update(subscribers).where(subscribers.c.id == row_id).values(pending_email=address)
        )
        row = _row(connection, subscribers.c.id == row_id)
    subscriber = subscriber_from_row(row)
    return Outcome(subscriber, ConfirmationLink(subscriber, address, nonce, claim))


def add_subscriber(
    engine: Engine, email: str, frequency: Frequency = Frequency.daily
) -> Subscriber:
    """Record ``email`` as pending (idempotent); a confirmed address stays confirmed.

    For the CLI and tests: no link is issued and no limit counted (``request_subscription``
    does both). An address that unsubscribed becomes pending again: it must confirm anew.
    """
    address = normalise_email(email)
    with engine.begin() as connection:
        _insert_new(
            connection, email=address, status=Status.pending, frequency=frequency, created_at=_now()
        )
        connection.execute(
            update(subscribers)
            .where(
                _at(address),
                subscribers.c.status != Status.confirmed,
                subscribers.c.user_id.is_(None),
            )
            .values(status=Status.pending, frequency=frequency)
        )
        row = _row(connection, _at(address))
    return subscriber_from_row(row)


def request_subscription(
    engine: Engine,
    settings: Settings,
    email: str,
    frequency: Frequency,
    requester: Requester,
    now: datetime | None = None,
) -> Outcome:
    """Someone asks, without signing in, for the digest at ``email``.

    A confirmed address stays as it is, and so does an address a member's settings hold (their
    own page manages it), unless that member never proved it and the link lapsed. Otherwise the
    row is pending and a link is due, unless one went there within the cool-down.
    """
    address = normalise_email(email)
    now = now or _now()
    with engine.begin() as connection:
        _insert_new(
            connection, email=address, status=Status.pending, frequency=frequency, created_at=now
        )
        row = _row(connection, _at(address))
        if row.status == Status.confirmed:
            return Outcome(subscriber_from_row(row))
        if row.user_id is not None and not _is_free(row, now, settings):
            return Outcome(None)
        if mail_is_configured(settings) and _recently_mailed(
            connection, address, _cooldown_start(settings, now)
        ):
            return Outcome(subscriber_from_row(row), link_sent_recently=True)
        values: dict[str, Any] = {"status": Status.pending, "frequency": frequency}
        if row.user_id is not None:  # a member's lapsed claim: the address's reader takes it
            values |= {"user_id": None, "topics": [], "pending_email": None}
        connection.execute(update(subscribers).where(subscribers.c.id == row.id).values(values))
        return _request_link(connection, settings, row.id, address, requester, now)


def set_topics(engine: Engine, email: str, topics: list[str]) -> Subscriber:
    """Replace a subscriber's saved searches (blank ones dropped, duplicates once)."""
    cleaned = list(dict.fromkeys(t.strip() for t in topics if t.strip()))
    address = normalise_email(email)
    with engine.begin() as connection:
        connection.execute(update(subscribers).where(_at(address)).values(topics=cleaned))
        row = _row(connection, _at(address))
    if row is None:
        raise InvalidEmail(f"{address} is not subscribed")
    return subscriber_from_row(row)


def link_subject(subscriber: Subscriber) -> tokens.LinkSubject:
    return tokens.LinkSubject(subscriber.id, subscriber.email)


def _find(engine: Engine, link: tokens.SignedLink) -> Any:
    """The subscription row a link names, while it still has the link's address."""
    with engine.connect() as connection:
        row = _row(connection, subscribers.c.id == link.subscriber_id)
    if row is None or not link.is_for(row.email):
        raise tokens.InvalidLink("This link is for a subscription that no longer exists.")
    return row


_USED = (
    "This confirmation link was used already, or a newer one was sent, or the subscription "
    "has stopped since."
)


def confirm(
    engine: Engine, settings: Settings, secret: str, token: str, now: datetime | None = None
) -> Subscriber:
    """Confirm what a confirmation link was issued for, once.

    Opening a used link again changes nothing; it still shows the subscription while that is
    confirmed at the link's address.
    """
    subject = tokens.read_confirmation_token(
        secret, token, max_age=settings.confirm_link_days * 86_400
    )
    now = now or _now()
    with engine.begin() as connection:
        # using up the nonce is the first write: it takes the store's write lock, so two
        # openings of one link cannot both get past this line
        # (a link opened before its sender recorded it as mailed holds its nonce in a claim)
        nonce = subscribers.c.confirmation_nonce
        used_up = connection.execute(
            update(subscribers)
            .where(
                subscribers.c.id == subject.subscriber_id,
                (nonce == subject.nonce)
                | (
                    nonce.startswith(CLAIMED) & nonce.endswith(f" {subject.nonce}", autoescape=True)
                ),
            )
            .values(confirmation_nonce=None)
        ).rowcount
        row = _row(connection, subscribers.c.id == subject.subscriber_id)
        if row is None:
            raise tokens.InvalidLink("This link is for a subscription that no longer exists.")
        if not used_up:
            if row.status == Status.confirmed and subject.is_for(row.email):
                return subscriber_from_row(row)
            raise tokens.InvalidLink(_USED)
        done = {
            "status": Status.confirmed, "confirmed_at": now, "failure_count": 0,
            "confirmation_nonce": None, "pending_email": None,
        }  # fmt: skip
        if subject.is_for(row.pending_email):
            row_id = _move(connection, row, row.pending_email, done, now)
        elif subject.is_for(row.email):
            connection.execute(update(subscribers).where(subscribers.c.id == row.id).values(done))
            row_id = row.id
        else:
            raise tokens.InvalidLink(_USED)
        return subscriber_from_row(_row(connection, subscribers.c.id == row_id))


def _move(
    connection: Connection, mine: Any, address: str, done: dict[str, Any], now: datetime
) -> int:
    """Move a member's subscription to ``address``, proved by its link; the row it ends on.

    A row already at the address is merged when the proof is enough: one nobody owns (the
    address's own subscription, now this member's), or a claim its member never proved. It
    keeps its history (papers sent, so none repeats), takes the member's settings, and the
    member's old row lets its address go. A row another member once proved stays theirs.
    """
    theirs = _row(connection, _at(address))
    if theirs is None:
        connection.execute(
            update(subscribers).where(subscribers.c.id == mine.id).values(email=address, **done)
        )
        return mine.id
    if theirs.user_id is not None and theirs.confirmed_at is not None:
        raise tokens.InvalidLink(
            f"{address} gets the digest through another account; it can move here once that "
            "account stops it or changes its address."
        )
    connection.execute(
        update(subscribers)
        .where(subscribers.c.id == mine.id)
        .values(
            user_id=None, status=Status.unsubscribed, unsubscribed_at=now,
            confirmation_nonce=None, pending_email=None,
        )
    )  # fmt: skip
    connection.execute(
        update(subscribers)
        .where(subscribers.c.id == theirs.id)
        .values(user_id=mine.user_id, frequency=mine.frequency, topics=mine.topics, **done)
    )
    return theirs.id


def _stop(connection: Connection, *where: Any) -> None:
    """Unsubscribe the rows ``where`` names; any link out for them stops working."""
    connection.execute(
        update(subscribers).where(*where).values(confirmation_nonce=None, pending_email=None)
    )
    connection.execute(
        update(subscribers)
        .where(*where, subscribers.c.status != Status.unsubscribed)
        .values(status=Status.unsubscribed, unsubscribed_at=_now())
    )


def subscriber_for_unsubscribe(engine: Engine, secret: str, token: str) -> Subscriber:
    """Who an unsubscribe link is for (to show the page before the button is pressed)."""
    subject = tokens.read_token(secret, tokens.UNSUBSCRIBE, token)
    return subscriber_from_row(_find(engine, subject))


def unsubscribe(engine: Engine, secret: str, token: str) -> Subscriber:
    """Stop every further digest to the address an unsubscribe link names (idempotent)."""
    subject = tokens.read_token(secret, tokens.UNSUBSCRIBE, token)
    row = _find(engine, subject)
    with engine.begin() as connection:
        _stop(connection, subscribers.c.id == row.id)
        return subscriber_from_row(_row(connection, subscribers.c.id == row.id))


def link_not_sent(engine: Engine, link: ConfirmationLink) -> None:
    """The mail for ``link`` was not delivered: asking again may send one before the cool-down,
    and a claimed link is owed again (the next round claims it)."""
    with engine.begin() as connection:
        if link.claim is not None:
            held = subscribers.c.confirmation_nonce == link.claim
            values: dict[str, Any] = {"confirmation_nonce": None}
        else:
            held = subscribers.c.confirmation_nonce == link.nonce
            values = {"confirmation_sent_at": None}
        connection.execute(
            update(subscribers).where(subscribers.c.id == link.subscriber.id, held).values(values)
        )


def member_subscription(engine: Engine, member_id: int) -> Subscriber | None:
    with engine.connect() as connection:
        row = _row(connection, subscribers.c.user_id == member_id)
    return None if row is None else subscriber_from_row(row)


def save_member_subscription(
    engine: Engine,
    settings: Settings,
    member_id: int,
    email: str,
    frequency: Frequency,
    topics: list[str],
    requester: Requester,
    now: datetime | None = None,
) -> Outcome:
    """A member's own subscription: address, frequency and topics, from their settings.

    Only the member's own row changes. A new address waits beside the current one until its
    link is opened; a member without a row gets one only at an address that is free (see
    ``_is_free``), else AddressTaken. Any address not yet confirmed gets a link, unless one
    went there within the cool-down.
    """
    address = normalise_email(email)
    now = now or _now()
    values: dict[str, Any] = {"frequency": frequency, "topics": _clean_topics(topics)}
    with engine.begin() as connection:
        # the member's own settings are the first write: it takes the store's write lock, so
        # what is read next stays true until this transaction ends
        connection.execute(
            update(subscribers).where(subscribers.c.user_id == member_id).values(values)
        )
        mine = _row(connection, subscribers.c.user_id == member_id)
        if mine is None:
            row_id = _take_address(connection, settings, member_id, address, values, now)
        elif same_mailbox(mine.email, address):  # back to (or at) the current address
            row_id = mine.id
            back: dict[str, Any] = {"pending_email": None}
            if mine.pending_email is not None:
                back["confirmation_nonce"] = None
            if mine.status != Status.confirmed:
                back["status"] = Status.pending
            connection.execute(update(subscribers).where(subscribers.c.id == row_id).values(back))
            if mine.status == Status.confirmed:
                row = _row(connection, subscribers.c.id == row_id)
                return Outcome(subscriber_from_row(row))
        else:  # a move, recorded as pending_email once its link is issued
            row_id = mine.id
        if _proved_by_account(connection, member_id, row_id, address):
            return Outcome(_confirm_proved(connection, row_id, address, now))
        return _request_link(connection, settings, row_id, address, requester, now)


def _proved_by_account(connection: Connection, member_id: int, row_id: int, address: str) -> bool:
    """Whether ``address`` is the member's account address, verified by its own link, and no
    other subscription holds it: its reader has proved it once, and needs no second link."""
    verified = connection.execute(
        select(users.c.id).where(
            users.c.id == member_id,
            func.lower(users.c.email) == mailbox_key(address),
            users.c.email_verified_at.is_not(None),
        )
    ).first()
    holder = _row(connection, _at(address))
    return verified is not None and (holder is None or holder.id == row_id)


def _confirm_proved(connection: Connection, row_id: int, address: str, now: datetime) -> Subscriber:
    connection.execute(
        update(subscribers)
        .where(subscribers.c.id == row_id)
        .values(
            email=address, pending_email=None, status=Status.confirmed, confirmed_at=now,
            confirmation_nonce=None, unsubscribed_at=None,
        )
    )  # fmt: skip
    return subscriber_from_row(_row(connection, subscribers.c.id == row_id))


def _take_address(
    connection: Connection,
    settings: Settings,
    member_id: int,
    address: str,
    values: dict[str, Any],
    now: datetime,
) -> int:
    """A first row for a member, at ``address`` if it is free; its id."""
    theirs = _row(connection, _at(address))
    if theirs is not None and not _is_free(theirs, now, settings):
        raise AddressTaken(
            f"{address} already has a digest subscription. If it is yours, stop it with the "
            "unsubscribe link in its mails (or move it off the account that holds it), then "
            "save it here again."
        )
    pending = {"user_id": member_id, "status": Status.pending, **values}
    if theirs is not None:
        connection.execute(
            update(subscribers)
            .where(subscribers.c.id == theirs.id)
            .values(pending, pending_email=None, confirmation_nonce=None)
        )
        return theirs.id
    if _insert_new(connection, email=address, created_at=now, **pending) != 1:  # taken meanwhile
        raise AddressTaken(f"{address} already has a digest subscription.")
    return _row(connection, _at(address)).id


def stop_member_subscription(engine: Engine, member_id: int) -> None:
    with engine.begin() as connection:
        _stop(connection, subscribers.c.user_id == member_id)


def has_subscription(engine: Engine, member_id: int) -> bool:
    """Whether a member gets the digest or waits to confirm it (so needs no sign-up form)."""
    subscription = member_subscription(engine, member_id)
    return subscription is not None and subscription.status in (Status.confirmed, Status.pending)


def _unmailed() -> tuple[Any, ...]:
    """Rows that wait for a confirmation link that was never mailed (or not delivered)."""
    awaiting = or_(subscribers.c.status == Status.pending, subscribers.c.pending_email.is_not(None))
    return (awaiting, subscribers.c.confirmation_sent_at.is_(None))


def claim_lease(settings: Settings) -> timedelta:
    """How long a claim on an owed link holds: longer than one mail can take to send, since
    every step of a send gives up after ``smtp_timeout``."""
    return timedelta(seconds=CLAIM_TIMEOUTS * settings.smtp_timeout)


def _claim_of(nonce: str, at: datetime, tag: str | None = None) -> str:
    """A claim's value: unique to it, so a sender whose claim lapsed cannot pass for its
    successor (61 characters of the column's 64). Claims sort by the time they were made."""
    tag = secrets.token_urlsafe(4) if tag is None else tag
    return f"{CLAIMED}{at:%Y%m%dT%H%M%S} {tag} {nonce}".rstrip()


def _claimed_at(claim: str) -> tuple[datetime, str]:
    """When a claim was made, and the nonce of the link it holds."""
    _, at, _tag, nonce = claim.split(" ")
    return datetime.strptime(at, "%Y%m%dT%H%M%S"), nonce


def _owed(connection: Connection, lapsed_before: datetime, limit: int) -> list[Any]:
    """(id, nonce) of rows owed a link that no live sender holds, oldest first."""
    columns = (subscribers.c.id, subscribers.c.confirmation_nonce)
    claimed = subscribers.c.confirmation_nonce.startswith(CLAIMED)
    free = connection.execute(
        select(*columns)
        .where(*_unmailed(), or_(subscribers.c.confirmation_nonce.is_(None), not_(claimed)))
        .order_by(subscribers.c.id)
        .limit(limit)
    ).all()
    held = connection.execute(select(*columns).where(*_unmailed(), claimed)).all()
    lapsed = [row for row in held if _claimed_at(row.confirmation_nonce)[0] < lapsed_before]
    return sorted([*free, *lapsed], key=lambda row: row.id)[:limit]


def _claim(engine: Engine, row_id: int, seen: str | None) -> ConfirmationLink | None:
    """Claim the link owed to row ``row_id`` if its nonce is still ``seen`` (a compare-and-set,
    so of several senders one wins) and its address is within its limit; else None."""
    lapsed = seen is not None and seen.startswith(CLAIMED)
    nonce = _claimed_at(seen)[1] if lapsed else secrets.token_urlsafe(24)
    claim = _claim_of(nonce, _now())
    try:
        with engine.begin() as connection:
            row = connection.execute(
                update(subscribers)
                .where(
                    subscribers.c.id == row_id,
                    subscribers.c.confirmation_nonce.is_not_distinct_from(seen),
                    *_unmailed(),
                )
                .values(confirmation_nonce=claim)
                .returning(subscribers)
            ).first()
            if row is None:  # mailed, changed or claimed by another sender meanwhile
                return None
            address = row.pending_email or row.email
            ratelimit.hit(
                connection, ratelimit.CONFIRMATION_MAILS_TO_ADDRESS, f"to:{mailbox_key(address)}"
            )
    except ratelimit.RateLimited:  # over its limit: a later round tries again
        return None
    return ConfirmationLink(subscriber_from_row(row), address, nonce, claim)


def claim_owed_links(
    engine: Engine, settings: Settings, limit: int = 100, lease: timedelta | None = None
) -> Iterator[ConfirmationLink]:
    """Links owed to addresses kept while mail was not configured, or whose mail failed.

    Each is claimed as it is handed out, so the caller holds one at a time: it mails the
    link, then calls ``link_mailed``, or ``link_not_sent`` to hand it back. A link another
    sender holds is passed over until its claim is older than ``lease`` (default
    ``claim_lease``). Each claim counts against its address's limit; an address over it waits
    for a later round.
    """
    if not mail_is_configured(settings):
        return
    lapsed_before = _now() - (claim_lease(settings) if lease is None else lease)
    with engine.connect() as connection:
        owed = _owed(connection, lapsed_before, limit)
    for row_id, seen in owed:
        link = _claim(engine, row_id, seen)
        if link is not None:
            yield link


def renew_claim(engine: Engine, link: ConfirmationLink) -> ConfirmationLink | None:
    """Renew the claim on a link issued a moment ago, right before mailing it (so no round
    takes it over meanwhile); None when the subscription changed since, or a round took the
    link over once the claim had lapsed."""
    fresh = _claim_of(link.nonce, _now())
    with engine.begin() as connection:
        held = connection.execute(
            update(subscribers)
            .where(
                subscribers.c.id == link.subscriber.id,
                subscribers.c.confirmation_nonce == link.claim,
            )
            .values(confirmation_nonce=fresh)
        ).rowcount
    return replace(link, claim=fresh) if held else None


def link_mailed(engine: Engine, link: ConfirmationLink, now: datetime | None = None) -> bool:
    """Record that the mail server accepted the mail of a claimed ``link``: the row now waits
    for that link. False when the claim was lost meanwhile (the subscription changed, or the
    claim lapsed and another sender took it)."""
    with engine.begin() as connection:
        return bool(
            connection.execute(
                update(subscribers)
                .where(
                    subscribers.c.id == link.subscriber.id,
                    subscribers.c.confirmation_nonce == link.claim,
                )
                .values(confirmation_nonce=link.nonce, confirmation_sent_at=now or _now())
            ).rowcount
        )
