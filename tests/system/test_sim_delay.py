"""The delay fault: a request held past the client's timeout, then carried out by the venue.

The venue checks the request's signed window at its arrival (ArrivalClock) and carries it out late; a client
that waits out the window before its lookup finds the order, and the fault counts as taken only once the
held request was carried out.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.clock import FakeClock
from core.domain import Side
from exchanges.backpack.client import BackpackClient
from exchanges.backpack.sim import BackpackSim
from exchanges.base import OrderRequest, OrderResult, OrderStatus
from exchanges.sim.admin import apply_fault
from exchanges.sim.http import ArrivalClock
from tests.helpers import wait_until

BTC = "BTC_USDC_PERP"
WINDOW_MS = 5000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 1, tzinfo=UTC))


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[BackpackSim]:
    venue = BackpackSim(clock=clock, seed=3).start()
    yield venue
    venue.stop()


@pytest.fixture
def client(sim: BackpackSim, clock: FakeClock) -> Iterator[BackpackClient]:
    c = BackpackClient(sim.rest_url, sim.api_key, sim.api_secret, clock=clock, read_timeout_s=0.2,
                       window_ms=WINDOW_MS, requests_per_s=200)  # fmt: skip
    yield c
    c.close()


def _place_in_thread(client: BackpackClient, out: list[object]) -> threading.Thread:
    def place() -> None:
        try:
            out.append(client.place_order(OrderRequest("77", BTC, Side.LONG, Decimal("0.01"))))
        except Exception as exc:  # the test reads what the client concluded
            out.append(exc)

    thread = threading.Thread(target=place, daemon=True)
    thread.start()
    return thread


def _venue_order(sim: BackpackSim) -> object | None:
    with sim.engine.lock:
        return next((o for o in sim.account().orders.values() if o.client_id == "77"), None)


def test_a_held_order_lands_before_the_window_ends_and_the_waiting_lookup_finds_it(
    sim: BackpackSim, client: BackpackClient, clock: FakeClock
) -> None:
    sim.clock = sim.http.arrival_clock = ArrivalClock(clock)
    apply_fault(sim.engine, sim.ws, {"kind": "delay", "seconds": 3, "path": "/api/v1/order"})
    out: list[object] = []
    thread = _place_in_thread(client, out)
    assert clock.wait_for_sleepers(2)  # the held request and the client waiting out the window
    assert _venue_order(sim) is None and sim.engine.faults.taken["delay"] == 0
    clock.advance(3.2)  # the venue carries it out; the client still waits
    wait_until(lambda: _venue_order(sim) is not None, 5, "the held order to be carried out")
    assert sim.engine.faults.taken["delay"] == 1
    assert out == []
    clock.advance(2)  # the window is over: now the lookup is final
    thread.join(5)
    assert isinstance(out[0], OrderResult) and out[0].status is OrderStatus.FILLED


@pytest.mark.parametrize("at_arrival", [True, False])
def test_the_window_is_checked_at_arrival(
    sim: BackpackSim, client: BackpackClient, clock: FakeClock, at_arrival: bool
) -> None:
    if at_arrival:
        sim.clock = sim.http.arrival_clock = ArrivalClock(clock)
    apply_fault(sim.engine, sim.ws, {"kind": "delay", "seconds": 8, "path": "/api/v1/order"})
    out: list[object] = []
    _place_in_thread(client, out)
    assert clock.wait_for_sleepers(2)
    clock.advance(8.5)  # past the 5 s window: accepted only when checked at arrival
    wait_until(lambda: sim.engine.faults.taken["delay"] == 1, 5, "the held request to be carried out")
    assert (_venue_order(sim) is not None) is at_arrival
