"""Queued maker fills reach the account streams: each partial fill of a resting order is told with its own and
the cumulative quantity, as a maker, on Backpack's order stream."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal as D

import pytest

from core.domain import Side
from exchanges.backpack.sim import BackpackSim
from exchanges.base import OrderType
from exchanges.sim.tape import Tape
from tests.venues.backpack_ws import StreamClient, data_of, subscribe_signature

BTC, ORDERS = "BTC_USDC_PERP", "account.orderUpdate"


@pytest.fixture
def sim() -> Iterator[BackpackSim]:
    s = BackpackSim(seed=4, publish_interval_s=0.02).start()
    s.prices.freeze("BTC")  # prices move by hand only
    s.engine.tape = Tape("streams", volume_low=D("0.6"), volume_high=D("0.6"))  # every print 3 BTC
    yield s
    s.stop()


def _mark(sim: BackpackSim, price: D) -> None:
    sim.prices.set_price("BTC", price)
    with sim.engine.lock:
        sim.engine.tick()


def test_partial_maker_fills_of_a_queued_order_are_told_with_cumulative_quantities(sim: BackpackSim) -> None:
    account = sim.account()
    with sim.engine.lock:
        account.collateral += D(100000)  # margin for 2 BTC
    mark = sim.engine.mark(BTC)
    ask = sim.engine.book(BTC)[1][0][0]
    with StreamClient(sim) as client:
        client.subscribe([ORDERS], subscribe_signature(sim.api_key, sim.api_secret))
        client.until_barrier()
        sell = sim.engine.place(account, symbol=BTC, side=Side.SHORT, order_type=OrderType.LIMIT, quantity=D(2),
                                price=ask)  # fmt: skip
        for price in (ask, mark, ask, mark, ask):  # three prints of 3 at the ask: 5 ahead, then 1 and 1 for us
            _mark(sim, price)
        events = data_of(client.until_barrier(), ORDERS)
    assert [(e["e"], e["X"], e.get("l"), e["z"], e.get("m")) for e in events] == [
        ("orderAccepted", "New", None, "0", None),
        ("orderFill", "PartiallyFilled", "1", "1", True),
        ("orderFill", "Filled", "1", "2", True),
    ]
    fees = [f.fee for f in account.fills if f.order_id == sell.id]
    assert [D(e["n"]) for e in events[1:]] == fees
    assert fees[0] == (ask * sim.engine.maker_fee).quantize(D("0.00000001"))
