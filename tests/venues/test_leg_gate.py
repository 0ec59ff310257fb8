"""Arm-and-fire: a leg's order is prepared (built and signed), held until the other leg's is prepared too, then
sent; a leg that will not send never keeps the other waiting."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from decimal import Decimal as D
from typing import Any

import pytest

from actors.exchange import ExchangeActor
from actors.messages import OrderAccepted, OrderRejected, PlaceOrder
from actors.timing import Timings
from core.clock import SystemClock
from core.domain import Side, Venue
from core.gate import LegGate
from exchanges.backpack.client import BackpackClient
from exchanges.backpack.sim import BackpackSim
from exchanges.base import OrderRequest, OrderStatus, PerpExchange
from exchanges.hibachi.client import HibachiClient
from tests.helpers import wait_until

BTC = "BTC_USDC_PERP"
HB_BTC = "BTC/USDT-P"


def _in_thread(fn: object) -> tuple[threading.Thread, dict[str, object]]:
    out: dict[str, object] = {}
    thread = threading.Thread(target=lambda: out.setdefault("result", fn()))  # type: ignore[operator]
    thread.start()
    return thread, out


def test_legs_leave_the_gate_together() -> None:
    gate = LegGate(2, wait_s=30)
    thread, out = _in_thread(gate.ready)
    wait_until(lambda: gate.waiting == 1, what="the first leg at the gate")
    assert thread.is_alive()  # held: the other leg is not ready
    assert gate.ready() is True
    thread.join(10)
    assert out["result"] is True


def test_an_abandoned_gate_releases_the_leg_waiting_and_holds_no_later_one() -> None:
    gate = LegGate(2, wait_s=30)
    thread, out = _in_thread(gate.ready)
    wait_until(lambda: gate.waiting == 1, what="the first leg at the gate")
    gate.abandon()
    thread.join(10)
    assert out["result"] is False
    assert gate.ready() is False  # a leg arriving later goes at once
    gate.abandon()  # abandoning twice (refused, then finished) is harmless


def test_a_leg_whose_partner_never_comes_goes_alone() -> None:
    assert LegGate(2, wait_s=0.01).ready() is False


class _StampedGate(LegGate):
    """A LegGate that notes when each leg arrived at it, prepared."""

    def __init__(self) -> None:
        super().__init__(2, wait_s=30)
        self.arrived_ns: list[int] = []

    def ready(self) -> bool:
        self.arrived_ns.append(time.monotonic_ns())
        return super().ready()


def _actor(venue: Venue, client: PerpExchange, timings: Timings) -> Any:
    return ExchangeActor.start(
        f"exchange.{venue.value}", 0, SystemClock(), None, venue=venue, factory=lambda: (client, None),
        stale_after_s=5, timings=timings,
    )  # fmt: skip


@pytest.fixture
def timings() -> Timings:
    return Timings()


@pytest.fixture
def bp_actor(bp: BackpackClient, timings: Timings) -> Iterator[Any]:
    actor = _actor(Venue.BACKPACK, bp, timings)
    yield actor
    actor.stop()


def test_a_prepared_order_is_not_sent_until_send_order(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    prepared = bp.prepare_order(OrderRequest("2048", BTC, Side.LONG, D("0.01")))
    assert prepared.marks == [] and bp_sim.account().orders == {}  # built and signed, not sent
    sent_after_ns = time.monotonic_ns()
    result = bp.send_order(prepared)
    assert result.status is OrderStatus.FILLED and result.fills  # its fills read with it
    assert [m.method for m in prepared.marks] == ["POST", "GET"]  # the order, then its fills
    assert prepared.marks[0].sent_ns >= sent_after_ns
    with pytest.raises(RuntimeError, match="sent once"):  # a write never goes twice
        bp.send_order(prepared)


def test_a_gated_order_leaves_only_once_the_other_leg_is_ready(
    bp_actor: Any, bp_sim: BackpackSim, timings: Timings
) -> None:
    gate = LegGate(2, wait_s=30)
    future = bp_actor.ask(PlaceOrder("2048", BTC, Side.LONG, D("0.01"), gate=gate), block=False)
    wait_until(lambda: gate.waiting == 1, what="the order at the gate")
    assert bp_sim.account().orders == {} and timings.wire(Venue.BACKPACK, "2048") is None  # prepared, not sent
    released_ns = time.monotonic_ns()
    assert gate.ready() is True
    reply = future.get(timeout=10)
    assert isinstance(reply, OrderAccepted) and reply.status is OrderStatus.FILLED
    wire = timings.wire(Venue.BACKPACK, "2048")
    assert wire is not None and wire.sent_ns >= released_ns and wire.requests == 2
    # Without a gate the next order is never held.
    late = bp_actor.ask(PlaceOrder("2049", BTC, Side.SHORT, D("0.01"), reduce_only=True), timeout=10)
    assert isinstance(late, OrderAccepted) and late.status is OrderStatus.FILLED


def test_the_legs_of_an_open_leave_together(bp: BackpackClient, hb: HibachiClient, timings: Timings) -> None:
    actors = [_actor(Venue.BACKPACK, bp, timings), _actor(Venue.HIBACHI, hb, timings)]
    try:
        gate = _StampedGate()
        futures = [
            actors[0].ask(PlaceOrder("4100", BTC, Side.LONG, D("0.01"), gate=gate), block=False),
            actors[1].ask(PlaceOrder("leg-4100", HB_BTC, Side.SHORT, D("0.01"), gate=gate), block=False),
        ]
        replies = [f.get(timeout=10) for f in futures]
    finally:
        for actor in actors:
            actor.stop()
    assert all(isinstance(r, OrderAccepted) and r.status is OrderStatus.FILLED for r in replies)
    timing = timings.open_timing(0, [(Venue.BACKPACK, "4100"), (Venue.HIBACHI, "leg-4100")])
    assert all(leg is not None for leg in timing.legs) and len(gate.arrived_ns) == 2
    # Neither leg went on the wire before both were prepared and at the gate.
    assert min(leg.sent_ns for leg in timing.legs if leg) >= max(gate.arrived_ns)
    assert timing.leg_skew_ns is not None and timing.leg_skew_ns >= 0


def test_a_leg_refused_before_sending_lets_the_other_go_at_once(bp_actor: Any, timings: Timings) -> None:
    gate = LegGate(2, wait_s=30)
    thread, out = _in_thread(gate.ready)  # the other leg, ready and waiting
    wait_until(lambda: gate.waiting == 1, what="the other leg at the gate")
    # Not a uint32: the client refuses it before anything is built or sent.
    reply = bp_actor.ask(PlaceOrder("not-a-number", BTC, Side.LONG, D("0.01"), gate=gate), timeout=10)
    assert isinstance(reply, OrderRejected) and reply.code == "local"
    thread.join(10)
    assert out["result"] is False
    assert timings.wire(Venue.BACKPACK, "not-a-number") is None  # never on the wire
    # A finished gated order leaves its gate open.
    late = LegGate(2, wait_s=30)
    partner, partner_out = _in_thread(late.ready)
    sent = bp_actor.ask(PlaceOrder("4096", BTC, Side.LONG, D("0.01"), gate=late), timeout=10)
    partner.join(10)
    assert isinstance(sent, OrderAccepted) and sent.status is OrderStatus.FILLED
    assert partner_out["result"] is True
