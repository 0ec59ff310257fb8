"""The HTTP edge times every request on the real wire, and reads environment proxies only when set."""

from __future__ import annotations

import time

import pytest

from core.clock import SystemClock
from exchanges.backpack.client import BackpackClient
from exchanges.backpack.sim import BackpackSim
from exchanges.base import WireMark
from exchanges.errors import VenueError
from exchanges.http import RestTransport


def _transport() -> RestTransport:
    return RestTransport("test", SystemClock(), lambda status, body, retry: VenueError("test", body))


def test_every_request_is_stamped_on_both_sides(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    marks: list[WireMark] = []
    before = time.monotonic_ns()
    with bp.transport.recording(marks):
        bp.server_time_ms()
        bp.account()
    after = time.monotonic_ns()
    assert [m.method for m in marks] == ["GET", "GET"]
    assert marks[0].path.endswith("/api/v1/time")
    for mark in marks:
        assert before <= mark.sent_ns < mark.answered_ns <= after
        # The simulator's own stamp of the arrival lies between the two (one clock on one machine).
        assert mark.venue_received_ns is not None
        assert mark.sent_ns <= mark.venue_received_ns <= mark.answered_ns
    bp.server_time_ms()  # outside the block: not stamped into `marks`
    assert len(marks) == 2


def test_a_failed_request_is_stamped_too() -> None:
    transport = _transport()
    marks: list[WireMark] = []
    with transport.recording(marks), pytest.raises(VenueError):
        transport.request("GET", "http://127.0.0.1:9/nothing-listens-here")
    assert len(marks) == 1
    assert marks[0].venue_received_ns is None
    assert marks[0].sent_ns <= marks[0].answered_ns


def test_environment_proxies_are_read_only_when_one_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert _transport().session.trust_env is False
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    assert _transport().session.trust_env is True
