from __future__ import annotations

from email.message import EmailMessage

import pytest

from broadsheet.config import Settings
from broadsheet.digest.mailer import DeliveryError, Mailer
from smtp_sink import SmtpSink


def _settings(smtp: SmtpSink) -> Settings:
    return Settings(smtp_host=smtp.host, smtp_port=smtp.port, smtp_timeout=5)


def _message(to: str = "reader@example.org") -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "b@example.org", to, "Hello"
    message.set_content("Hello")
    return message


def test_delivers_over_one_connection(smtp: SmtpSink) -> None:
    with Mailer(_settings(smtp)) as mailer:
        mailer.send(_message("a@example.org"))
        mailer.send(_message("b@example.org"))
    assert [m["To"] for m in smtp.messages] == ["a@example.org", "b@example.org"]


def test_451_is_transient_and_the_next_attempt_goes_through(smtp: SmtpSink) -> None:
    smtp.replies.append("451 4.3.0 Try again later")
    with Mailer(_settings(smtp)) as mailer:
        with pytest.raises(DeliveryError) as failed:
            mailer.send(_message())
        assert not failed.value.permanent and failed.value.code == 451
        mailer.send(_message())  # reconnects
    assert len(smtp.messages) == 1


def test_550_is_permanent(smtp: SmtpSink) -> None:
    smtp.replies.append("550 5.1.1 No such mailbox")
    with Mailer(_settings(smtp)) as mailer, pytest.raises(DeliveryError) as failed:
        mailer.send(_message())
    assert failed.value.permanent and failed.value.code == 550
    assert "No such mailbox" in str(failed.value)
    assert smtp.messages == []


def test_an_unreachable_server_is_transient() -> None:
    from helpers import free_port

    settings = Settings(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_timeout=2)
    with Mailer(settings) as mailer, pytest.raises(DeliveryError) as failed:
        mailer.send(_message())
    assert not failed.value.permanent


def test_the_envelope_names_the_one_to_address_only(smtp: SmtpSink) -> None:
    message = _message("a@example.org")
    message["Cc"], message["Bcc"] = "b@example.org", "c@example.org"
    with Mailer(_settings(smtp)) as mailer:
        mailer.send(message)
    assert smtp.envelopes == [("b@example.org", ["a@example.org"])]


@pytest.mark.parametrize(
    "to", ["a@example.org, root@example.org", "a@evil.example,root", "", "a@exa\x00mple.org"]
)
def test_anything_but_one_address_reaches_nobody(smtp: SmtpSink, to: str) -> None:
    message = _message()
    del message["To"]
    if to:
        message["To"] = to
    with Mailer(_settings(smtp)) as mailer, pytest.raises(DeliveryError) as failed:
        mailer.send(message)
    assert failed.value.permanent
    assert smtp.envelopes == []


def test_an_explicit_recipient_overrides_the_headers(smtp: SmtpSink) -> None:
    message = _message("a@example.org, root@example.org")
    with Mailer(_settings(smtp)) as mailer:
        mailer.send(message, "a@example.org")
    assert smtp.envelopes == [("b@example.org", ["a@example.org"])]
