"""Mail sent after the answer: in order, on a thread that comes and goes, bounded, and a job
that fails is logged by name without what it carried."""

from __future__ import annotations

import logging
import threading

import pytest

from broadsheet.community.mail_queue import MailQueue


def test_jobs_run_in_order_off_the_callers_thread_and_again_after_an_idle_spell() -> None:
    queue, ran = MailQueue(), []
    for n in range(3):
        assert queue.submit("job", lambda n=n: ran.append((n, threading.current_thread().name)))
    assert queue.wait(5)
    assert [n for n, _ in ran] == [0, 1, 2]
    assert {name for _, name in ran} == {"account-mail"}
    queue.submit("later", lambda: ran.append((3, "")))
    assert queue.wait(5) and ran[-1][0] == 3


def test_a_full_queue_drops_new_jobs_and_a_failing_job_is_logged_by_name_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    queue, release = MailQueue(backlog=2), threading.Event()
    queue.submit("hung mail", release.wait)  # taken by the thread: the queue is empty again
    assert not queue.wait(0.2)

    def fails() -> None:
        raise RuntimeError("secret link http://example.org/?token=abc")

    assert queue.submit("reset mail", fails) and queue.submit("reset mail", fails)
    assert not queue.submit("one too many", fails)
    release.set()
    assert queue.wait(5)
    assert "one too many not sent: 2 mails wait already" in caplog.text
    assert caplog.text.count("reset mail failed: RuntimeError") == 2
    assert "token" not in caplog.text
