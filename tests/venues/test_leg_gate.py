"""Arm-and-fire: a leg's order is prepared (built and signed), held until the other leg's is prepared too, then
sent; a leg that will not send never keeps the other waiting."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

import core.gate
from actors.exchange import ExchangeActor
from actors.messages import OrderAccepted, OrderRejected, PlaceOrder
from actors.timing import Timings
from core.clock import SystemClock
from core.domain import Side, Venue
from core.gate import LegGate, Write
from exchanges.backpack.client import BackpackClient
from exchanges.backpack.sim import BackpackSim
from exchanges.base import OrderRequest, OrderStatus, PerpExchange, WireMark
from exchanges.errors import VenueError, VenueUnavailable
from exchanges.held_writes import HeldHTTPConnection, HeldRequest, held_at, legs_together
from exchanges.hibachi.client import HibachiClient
from exchanges.http import RestTransport
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
    """A LegGate that notes when each leg arrived at it, which thread handed each held request in, and which
    thread wrote it."""

    def __init__(self, legs: int = 2) -> None:
        super().__init__(legs, wait_s=30)
        self.arrived_ns: list[int] = []
        self.held_by: list[int] = []
        self.written_by: list[int] = []

    def ready(self, write: Write | None = None) -> bool:
        self.arrived_ns.append(time.monotonic_ns())
        if write is None:
            return super().ready()
        self.held_by.append(threading.get_ident())

        def noted() -> None:
            self.written_by.append(threading.get_ident())
            write()

        return super().ready(noted)


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
    # Both requests were held, each by its own venue's thread, and both written by the thread that came last.
    assert len(gate.held_by) == 2 and gate.held_by[0] != gate.held_by[1]
    assert gate.written_by == [gate.held_by[1], gate.held_by[1]]


def test_a_held_order_whose_partner_never_comes_is_written_by_its_own_thread(
    bp_actor: Any, bp_sim: BackpackSim, timings: Timings
) -> None:
    gate = LegGate(2, wait_s=0.05)
    reply = bp_actor.ask(PlaceOrder("4200", BTC, Side.LONG, D("0.01"), gate=gate), timeout=10)
    assert isinstance(reply, OrderAccepted) and reply.status is OrderStatus.FILLED
    assert timings.wire(Venue.BACKPACK, "4200") is not None and gate.ready() is False  # spent: a late leg goes alone


class _DroppingGate(LegGate):
    """A one-leg gate that closes the held request's connection before it is written."""

    def __init__(self) -> None:
        super().__init__(1, wait_s=30)

    def ready(self, write: Write | None = None) -> bool:
        held = getattr(write, "__self__", None)
        assert isinstance(held, HeldRequest) and held.connection is not None
        held.connection.sock.close()
        return super().ready(write)


def _transport() -> RestTransport:
    return RestTransport("test", SystemClock(), lambda status, body, retry: VenueError("test", body))


def test_a_held_request_that_cannot_be_written_fails_in_its_own_thread(bp_sim: BackpackSim) -> None:
    transport, marks = _transport(), list[WireMark]()
    with transport.recording(marks), legs_together(_DroppingGate()), pytest.raises(VenueUnavailable):
        transport.request("POST", bp_sim.rest_url + "/api/v1/order", data="{}")
    assert len(marks) == 1 and marks[0].venue_received_ns is None  # nothing reached the venue
    # The connection is not reused broken: the next request goes out and is answered.
    with transport.recording(marks):
        transport.request("GET", bp_sim.rest_url + "/api/v1/time")
    assert marks[1].venue_received_ns is not None


def test_only_the_first_write_meets_the_gate_and_a_proxied_one_is_not_held(bp_sim: BackpackSim) -> None:
    transport, gate = _transport(), _StampedGate(1)
    with legs_together(gate):
        transport.request("GET", bp_sim.rest_url + "/api/v1/time")  # a read never waits at the gate
        assert gate.arrived_ns == []
        with pytest.raises(VenueError):  # unsigned: refused, but answered
            transport.request("POST", bp_sim.rest_url + "/api/v1/order", data="{}")
        with pytest.raises(VenueError):  # the gate is spent: a second write goes straight out
            transport.request("POST", bp_sim.rest_url + "/api/v1/order", data="{}")
    assert len(gate.arrived_ns) == 1 and len(gate.held_by) == 1 and gate.written_by == gate.held_by
    # With a proxy configured the bytes cannot be held: the leg waits at the gate and then sends them itself.
    transport.session.proxies = {"https": "http://127.0.0.1:9"}  # not for this http:// URL: it goes direct
    proxied = _StampedGate(1)
    with legs_together(proxied), pytest.raises(VenueError) as refused:
        transport.request("POST", bp_sim.rest_url + "/api/v1/order", data="{}")
    assert not isinstance(refused.value, VenueUnavailable)  # answered by the venue
    assert len(proxied.arrived_ns) == 1 and proxied.held_by == [] and proxied.written_by == []


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


def test_a_held_request_refuses_a_body_it_could_not_keep_in_order(bp_sim: BackpackSim) -> None:
    host, port = bp_sim.rest_url.removeprefix("http://").split(":")
    connection = HeldHTTPConnection(host, int(port))
    try:
        with held_at(LegGate(1)) as held:
            connection.send(b"POST /api/v1/order HTTP/1.1\r\n")  # held, not written
            assert held.connection is connection and held.chunks
            with pytest.raises(TypeError, match="bytes only"):  # written now, it would go before the held bytes
                connection.send(io.BytesIO(b"{}"))
    finally:
        connection.close()


def test_the_last_leg_naps_once_before_writing_the_held_legs_and_not_when_none_is_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events: list[str] = []
    monkeypatch.setattr(core.gate, "_fresh_slice", lambda: events.append("nap"))
    gate = LegGate(2, wait_s=30)
    thread, out = _in_thread(lambda: gate.ready(lambda: events.append("write first")))
    wait_until(lambda: gate.waiting == 1, what="the first leg at the gate")
    assert events == []  # nothing happens before the last leg is there
    assert gate.ready(lambda: events.append("write last")) is True
    thread.join(10)
    assert out["result"] is True and events == ["nap", "write first", "write last"]
    events.clear()
    assert LegGate(1).ready() is True and events == []  # a leg sending its own bytes is not delayed


def _voluntary_switches() -> int:
    """This thread's voluntary context switches so far (Linux): times it left the CPU by blocking."""
    for line in Path("/proc/thread-self/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches in /proc/thread-self/status")


def test_the_nap_before_writing_leaves_the_cpu_so_the_writes_start_on_a_fresh_slice() -> None:
    # A sleep blocks, and a task woken from it gets a new slice. A sched_yield (what came before) is no voluntary
    # switch, and gives nothing when no other task waits for this CPU: on a busy host the writer then lost the CPU
    # between its two writes. Several naps, so a switch that happened to come anyway cannot pass for them (one
    # nap in five may find its deadline past when a busy machine preempts the thread just before it sleeps).
    before = _voluntary_switches()
    for _ in range(5):
        core.gate._fresh_slice()
    assert _voluntary_switches() - before >= 4
