"""The simulator's index of orders that may still fill: resting orders fill on a later tick, also after a
restore from disk, and a client id stays taken while its order rests."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.clock import FakeClock
from core.domain import Side
from exchanges.base import OrderStatus, OrderType
from exchanges.sim.engine import SimEngine, SimMarket, SimRejectError
from exchanges.sim.price import PriceSource
from exchanges.sim.store import dump_engine, load_engine

BTC = SimMarket("BTC", "BTC", Decimal("0.1"), Decimal("0.001"), Decimal("0.001"))


def _engine(prices: PriceSource, clock: FakeClock) -> SimEngine:
    engine = SimEngine("sim", [BTC], prices, clock, maker_fee=Decimal(0), taker_fee=Decimal(0))
    engine.open_account("paper", Decimal(100000))
    return engine


def _bid(engine: SimEngine, client_id: str) -> str:
    order = engine.place(
        engine.accounts["paper"], symbol="BTC", side=Side.LONG, order_type=OrderType.LIMIT,
        quantity=Decimal("0.1"), price=Decimal(64000), client_id=client_id,
    )  # fmt: skip
    assert order.status is OrderStatus.NEW
    return order.id


@pytest.mark.parametrize("restored", [False, True])
def test_a_resting_order_fills_when_the_price_comes(restored: bool) -> None:
    clock = FakeClock(datetime(2026, 3, 1, tzinfo=UTC))
    prices = PriceSource(clock, prices={"BTC": Decimal(65000)})
    engine = _engine(prices, clock)
    order_id = _bid(engine, "1")
    if restored:  # a new process: the books come back from disk
        saved = dump_engine(engine)
        engine = _engine(prices, clock)
        load_engine(engine, saved)
    prices.set_price("BTC", Decimal(63900))
    engine.tick()
    assert engine.accounts["paper"].orders[order_id].status is OrderStatus.FILLED
    assert engine.accounts["paper"].positions["BTC"].quantity == Decimal("0.1")


def test_a_client_id_is_taken_while_its_order_rests() -> None:
    clock = FakeClock(datetime(2026, 3, 1, tzinfo=UTC))
    engine = _engine(PriceSource(clock, prices={"BTC": Decimal(65000)}), clock)
    order_id = _bid(engine, "7")
    with pytest.raises(SimRejectError, match="client id 7"):
        _bid(engine, "7")
    engine.cancel(engine.accounts["paper"], order_id=order_id)
    _bid(engine, "7")
