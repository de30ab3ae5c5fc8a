"""Sending mail over SMTP, telling failures worth retrying from those that are final.

Every message goes to exactly one recipient, named to the server explicitly: never the
addresses smtplib would gather from To:, Cc: and Bcc:, so an address that smuggles in a list
or a second header reaches nobody.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from email.message import Message

from broadsheet.config import Settings
from broadsheet.digest.subscriptions import InvalidEmail, normalise_email


class DeliveryError(Exception):
    """A message was not accepted; ``permanent`` failures (5xx) must not be retried."""

    def __init__(self, message: str, permanent: bool, code: int | None = None):
        super().__init__(message)
        self.permanent, self.code = permanent, code


def _connect(settings: Settings) -> smtplib.SMTP:
    if settings.smtp_security == "tls":
        context = ssl.create_default_context()
        return smtplib.SMTP_SSL(
            settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout, context=context
        )
    connection = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout)
    if settings.smtp_security == "starttls":
        connection.starttls(context=ssl.create_default_context())
    return connection


class Mailer:
    """One SMTP connection, opened on first use and reused for every message sent through it."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._connection: smtplib.SMTP | None = None

    def __enter__(self) -> Mailer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._connection.quit()
            self._connection = None

    def _open(self) -> smtplib.SMTP:
        if self._connection is None:
            connection = _connect(self.settings)
            if self.settings.smtp_username:
                connection.login(self.settings.smtp_username, self.settings.smtp_password or "")
            self._connection = connection
        return self._connection

    def send(self, message: Message, recipient: str | None = None) -> None:
        """Deliver ``message`` to ``recipient`` (default: its one To: address) or raise
        DeliveryError; a recipient that is not one valid address is a permanent failure."""
        to = one_recipient(message, recipient)
        try:
            refused = self._open().send_message(message, to_addrs=[to])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            raise DeliveryError(_reply(code, reply), permanent=code >= 500, code=code) from exc
        except smtplib.SMTPResponseException as exc:
            self._drop()
            raise DeliveryError(
                _reply(exc.smtp_code, exc.smtp_error), permanent=exc.smtp_code >= 500,
                code=exc.smtp_code,
            ) from exc  # fmt: skip
        except (smtplib.SMTPException, OSError) as exc:  # connection trouble: try again later
            self._drop()
            raise DeliveryError(f"{type(exc).__name__}: {exc}", permanent=False) from exc
        if refused:
            code, reply = next(iter(refused.values()))
            raise DeliveryError(_reply(code, reply), permanent=code >= 500, code=code)

    def _drop(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None


def one_recipient(message: Message, recipient: str | None = None) -> str:
    """The single normalised address a message goes to, or DeliveryError (permanent)."""
    if recipient is None:
        headers = message.get_all("To") or []
        recipient = str(headers[0]) if len(headers) == 1 else ""
    try:
        return normalise_email(recipient)
    except InvalidEmail as exc:
        raise DeliveryError(f"not sent: {exc}", permanent=True) from exc


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {text}"
