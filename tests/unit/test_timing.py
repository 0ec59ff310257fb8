"""What an open's timing says (leg skew, the engine's time before sending and after the venues answered), and
the Timings observer that gathers orders' and opens' timings and feeds the order metrics."""

from __future__ import annotations

from decimal import Decimal as D

from actors.messages import OrderAccepted, OrderInFlight, OrderRejected
from actors.timing import OpenTiming, Timings, WireTiming, wire_timing
from control.metrics import Metrics
from core.domain import Venue
from exchanges.base import OrderStatus, WireMark


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


def test_timings_assemble_an_open_from_its_legs_orders_and_keep_it() -> None:
    timings = Timings()
    timings.order_sent(Venue.BACKPACK, "7", _leg(4_000, 30_000, 50_000))
    timings.order_sent(Venue.HIBACHI, "7", _leg(4_600, 31_000, 70_000))
    timings.order_sent(Venue.HIBACHI, "never-sent", None)  # refused before the wire: nothing to keep
    legs = [(Venue.BACKPACK, "7"), (Venue.HIBACHI, "7")]
    opened = timings.open_timing(1_000, legs, 73_500)
    assert opened.leg_skew_ns == 600 and opened.to_commit_ns == 3_500
    assert timings.open_timing(1_000, [(Venue.BACKPACK, "7"), (Venue.HIBACHI, "never-sent")]).leg_skew_ns is None
    timings.record_open(42, opened)
    assert timings.open(42) == opened and timings.open(43) is None


def test_timings_keep_only_the_latest() -> None:
    timings = Timings(keep_orders=2, keep_opens=1)
    for n in range(3):
        timings.order_sent(Venue.BACKPACK, str(n), _leg(n, n + 1, n + 2))
        timings.record_open(n, OpenTiming(n, (), n + 1))
    assert [timings.wire(Venue.BACKPACK, str(n)) is not None for n in range(3)] == [False, True, True]
    assert [timings.open(n) is not None for n in range(3)] == [False, False, True]


def test_settled_orders_reach_the_metrics_when_they_are_on() -> None:
    Timings().order_settled(Venue.BACKPACK, OrderInFlight(Venue.BACKPACK, "1", "lost"), 0.5)  # metrics off: no-op
    metrics = Metrics()
    timings = Timings(metrics)
    filled = OrderAccepted(Venue.HIBACHI, "2", "v", OrderStatus.FILLED, D(1), D(1), D(100), D(0))
    timings.order_settled(Venue.HIBACHI, filled, 0.02)
    timings.order_settled(Venue.HIBACHI, OrderRejected(Venue.HIBACHI, "3", None, "no"), 0.01)
    timings.order_settled(Venue.BACKPACK, OrderInFlight(Venue.BACKPACK, "4", "lost"), 30)

    def count(venue: str, result: str) -> float | None:
        return metrics.registry.get_sample_value("perp_farmer_orders_total", {"venue": venue, "result": result})

    assert (count("hibachi", "filled"), count("hibachi", "rejected"), count("backpack", "in_flight")) == (1, 1, 1)
    assert metrics.registry.get_sample_value("perp_farmer_order_seconds_count", {"venue": "hibachi"}) == 2
