"""Arm-and-fire: a leg's order request is built and signed, then held until the other leg's is ready, and
a leg that will not send never keeps the other waiting."""

from __future__ import annotations

import threading
import time
from decimal import Decimal as D

from actors.exchange import ExchangeActor
from actors.messages import OrderAccepted, OrderRejected, PlaceOrder
from core.clock import SystemClock
from core.domain import Side, Venue
from core.gate import LegGate
from exchanges.backpack.client import BackpackClient
from exchanges.backpack.sim import BackpackSim
from exchanges.base import OrderRequest, OrderResult, OrderStatus
from exchanges.http import WireMark
from tests.helpers import wait_until

BTC = "BTC_USDC_PERP"


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


def test_a_gated_order_leaves_only_once_the_other_leg_is_ready(bp: BackpackClient, bp_sim: BackpackSim) -> None:
    gate = LegGate(2, wait_s=30)
    marks: list[WireMark] = []
    bp.transport.tap = marks.append
    bp.transport.gate = gate
    thread, out = _in_thread(lambda: bp.place_order(OrderRequest("2048", BTC, Side.LONG, D("0.01"))))
    wait_until(lambda: gate.waiting == 1, what="the order at the gate")
    assert marks == [] and bp_sim.account().orders == {}  # built and signed, not sent
    released_ns = time.monotonic_ns()
    assert gate.ready() is True
    thread.join(10)
    result = out["result"]
    assert isinstance(result, OrderResult) and result.status is OrderStatus.FILLED
    assert marks[0].method == "POST" and marks[0].sent_ns >= released_ns
    assert bp.transport.gate is None  # one use: later requests are never held
    bp.place_order(OrderRequest("2049", BTC, Side.SHORT, D("0.01"), reduce_only=True))


def test_a_leg_refused_before_sending_lets_the_other_go_at_once(bp: BackpackClient) -> None:
    actor = ExchangeActor.start(
        "exchange.backpack", 0, SystemClock(), None, venue=Venue.BACKPACK, factory=lambda: (bp, None), stale_after_s=5
    )
    try:
        gate = LegGate(2, wait_s=30)
        thread, out = _in_thread(gate.ready)  # the other leg, ready and waiting
        wait_until(lambda: gate.waiting == 1, what="the other leg at the gate")
        # Not a uint32: the client refuses it before anything is built or sent.
        reply = actor.ask(PlaceOrder("not-a-number", BTC, Side.LONG, D("0.01"), gate=gate), timeout=10)
        assert isinstance(reply, OrderRejected) and reply.code == "local"
        thread.join(10)
        assert out["result"] is False
        # Without a gate the same actor sends as ever, and a finished gated order leaves its gate open.
        late = LegGate(2, wait_s=30)
        partner, partner_out = _in_thread(late.ready)
        sent = actor.ask(PlaceOrder("4096", BTC, Side.LONG, D("0.01"), gate=late), timeout=10)
        partner.join(10)
        assert isinstance(sent, OrderAccepted) and sent.status is OrderStatus.FILLED
        assert partner_out["result"] is True
    finally:
        actor.stop()
