"""The batch scheduling class: taken by the calling thread only, and a refusal logged rather than raised."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

import pytest

from core import sched
from core.sched import batch_class


def _in_a_thread(call: Callable[[], object]) -> tuple[object, int]:
    """Run `call` in a new thread (the class is per thread: the test process keeps its own); its result and the
    thread's scheduling class afterwards."""
    out: list[tuple[object, int]] = []

    def run() -> None:
        out.append((call(), os.sched_getscheduler(0)))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return out[0]


def test_the_caller_is_put_on_the_batch_class() -> None:
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
    assert _in_a_thread(lambda: batch_class("test")) == (True, os.SCHED_BATCH)
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the thread alone


def test_a_refusal_is_logged_and_the_class_left(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(*_: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(sched.os, "sched_setscheduler", refuse)
    with caplog.at_level(logging.WARNING, "core.sched"):
        assert _in_a_thread(lambda: batch_class("paper host")) == (False, os.SCHED_OTHER)
    assert "paper host: scheduling class unchanged" in caplog.text


def test_a_system_without_the_class_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delattr(sched.os, "SCHED_BATCH")
    with caplog.at_level(logging.WARNING, "core.sched"):
        assert batch_class("worker") is False
    assert "no SCHED_BATCH" in caplog.text
