"""What an open's timing says: leg skew, the engine's time before sending and after the venues answered."""

from __future__ import annotations

from actors.timing import OpenTiming, WireTiming, wire_timing
from exchanges.base import WireMark


def _leg(sent: int, answered: int, done: int, arrived: int | None = None) -> WireTiming:
    return WireTiming(sent, answered, done, 1, arrived)


def test_open_timing_measures_skew_and_the_engine_s_own_time() -> None:
    timing = OpenTiming(1_000, (_leg(4_000, 30_000, 50_000, 4_300), _leg(4_600, 31_000, 70_000, 4_700)), 73_500)
    assert timing.leg_skew_ns == 600
    assert timing.arrival_skew_ns == 400
    assert timing.to_wire_ns == 3_600  # decided at 1,000; the later leg left at 4,600
    assert timing.to_commit_ns == 3_500  # the last venue reply at 70,000; committed at 73,500


def test_open_timing_has_no_skew_when_a_leg_never_left() -> None:
    timing = OpenTiming(1_000, (_leg(4_000, 30_000, 50_000), None), 60_000)
    assert timing.leg_skew_ns is None
    assert timing.to_wire_ns is None
    assert timing.to_commit_ns is None
    assert OpenTiming(1_000, (_leg(4_000, 30_000, 50_000), _leg(5_000, 9_000, 9_000)), 60_000).arrival_skew_ns is None


def test_the_order_is_the_first_write_and_done_is_the_last_reply() -> None:
    marks = [
        WireMark("GET", "/exchange/info", 10, 20),  # a status check before the order is not the order
        WireMark("POST", "/trade/order", 30, 55, 33),
        WireMark("GET", "/trade/order", 60, 80),
        WireMark("GET", "/trade/account/trades", 85, 99),
    ]
    assert wire_timing(marks) == WireTiming(30, 55, 99, 3, 33)
    assert wire_timing(marks[:1]) is None
    assert wire_timing([]) is None
