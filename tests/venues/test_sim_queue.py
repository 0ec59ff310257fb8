"""Resting orders in the simulator fill only from the tape: trades through their price, or at it once the queue
ahead is gone; never because the price touched them. Fake clock, pinned prices, fixed print volumes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from core.clock import FakeClock
from core.domain import Side
from exchanges.base import OrderStatus, OrderType, TimeInForce
from exchanges.sim.engine import SimAccount, SimEngine, SimMarket, SimOrder, SimRejectError
from exchanges.sim.price import PriceSource
from exchanges.sim.tape import Tape

BTC = SimMarket("BTC", "BTC", D("0.1"), D("0.001"), D("0.001"))  # book: 5 of size at each tick, 1 tick off mark
MAKER, TAKER = D("0.0002"), D("0.0005")


class _Rig:
    """An engine whose every print is 3 BTC, priced by hand."""

    def __init__(self) -> None:
        clock = FakeClock(datetime(2026, 3, 1, tzinfo=UTC))
        self.prices = PriceSource(clock, prices={"BTC": D(65000)})
        self.engine = SimEngine("sim", [BTC], self.prices, clock, maker_fee=MAKER, taker_fee=TAKER)
        self.engine.tape = Tape("test", volume_low=D("0.6"), volume_high=D("0.6"))
        self.account = self.engine.open_account("paper", D(1000000))
        self.events: list[tuple[str, OrderStatus, D]] = []
        self.engine.order_listeners.append(self._heard)

    def _heard(self, _account: SimAccount, order: SimOrder) -> None:
        self.events.append((order.id, order.status, order.filled))

    def mark(self, price: str) -> None:
        self.prices.set_price("BTC", D(price))
        self.engine.tick()

    def limit(self, side: Side, price: str, quantity: str = "2", tif: TimeInForce = TimeInForce.GTC) -> SimOrder:
        return self.engine.place(self.account, symbol="BTC", side=side, order_type=OrderType.LIMIT,
                                 quantity=D(quantity), price=D(price), time_in_force=tif)  # fmt: skip

    def heard(self, order: SimOrder) -> list[tuple[OrderStatus, D]]:
        return [(status, filled) for oid, status, filled in self.events if oid == order.id]


@pytest.fixture
def rig() -> _Rig:
    return _Rig()


def test_the_book_touching_the_price_fills_nothing(rig: _Rig) -> None:
    buy = rig.limit(Side.LONG, "64999.5")  # the fifth bid: 5 ahead
    sell = rig.limit(Side.SHORT, "65000.5")
    assert (buy.queue_ahead, sell.queue_ahead) == (D(5), D(5))
    rig.mark("64999.6")  # best bid now 64999.5: the prints were all above the buy
    rig.mark("65000.4")  # best ask now 65000.5: the prints were all below the sell
    assert (buy.filled, sell.filled) == (0, 0)
    assert buy.status is sell.status is OrderStatus.NEW
    assert rig.account.fills == []


def test_an_ask_come_down_to_a_bid_unseen_by_the_tape_only_touches_it(rig: _Rig) -> None:
    buy = rig.limit(Side.LONG, "64999.5")
    rig.engine.tape = Tape("restored")  # as after a restart: the tape has not seen the touch the order met
    rig.mark("64999.4")  # best ask 64999.5: at the price, no print seen
    assert buy.filled == 0
    rig.engine.tape = Tape("restored again")
    rig.mark("64999.3")  # best ask 64999.4: the market is offered through the bid
    assert buy.status is OrderStatus.FILLED and rig.account.fills[0].is_maker


def test_trades_through_the_price_fill_the_whole_order_as_maker(rig: _Rig) -> None:
    buy = rig.limit(Side.LONG, "64999.9")  # the best bid, 5 ahead
    rig.mark("64999.8")  # sellers print at 64999.9 and 64999.8: through it
    assert buy.status is OrderStatus.FILLED and buy.filled == D(2)
    (fill,) = rig.account.fills
    assert (fill.price, fill.quantity, fill.is_maker) == (D("64999.9"), D(2), True)
    assert fill.fee == (D("64999.9") * 2 * MAKER).quantize(D("0.00000001"))
    assert rig.account.positions["BTC"].quantity == D(2)


def test_at_the_price_the_queue_ahead_goes_first_then_partial_fills_add_up(rig: _Rig) -> None:
    buy = rig.limit(Side.LONG, "64999.9")
    rig.mark("64999.9")  # one print of 3 at the price: 5 ahead becomes 2
    assert (buy.filled, buy.queue_ahead) == (0, D(2))
    rig.mark("65000")  # back up: the asks are lifted, nothing at the bid
    assert buy.filled == 0
    rig.mark("64999.9")  # 3 more at the price: 2 ahead, then 1 for us
    assert (buy.status, buy.filled, buy.queue_ahead) == (OrderStatus.PARTIALLY_FILLED, D(1), D(0))
    rig.mark("65000")
    rig.mark("64999.9")
    assert buy.status is OrderStatus.FILLED
    assert rig.heard(buy) == [
        (OrderStatus.NEW, D(0)), (OrderStatus.PARTIALLY_FILLED, D(1)), (OrderStatus.FILLED, D(2)),
    ]  # fmt: skip
    assert [(f.quantity, f.is_maker) for f in rig.account.fills] == [(D(1), True), (D(1), True)]
    assert buy.fee == 2 * (D("64999.9") * MAKER).quantize(D("0.00000001"))
    assert rig.account.collateral == D(1000000) - buy.fee


def test_an_order_that_improves_the_touch_has_no_queue_ahead(rig: _Rig) -> None:
    first = rig.limit(Side.LONG, "65000.0", quantity="4")  # inside the spread
    assert first.queue_ahead == 0
    rig.mark("65000.1")  # the book's bid comes up to it
    late = rig.limit(Side.LONG, "65000.0", quantity="4")  # joins behind the displayed 5
    assert late.queue_ahead == D(5)
    rig.mark("65000.0")  # one print of 3 at 65000.0
    assert (first.filled, first.status) == (D(3), OrderStatus.PARTIALLY_FILLED)
    assert (late.filled, late.queue_ahead) == (0, D(2))


def test_a_cancel_after_a_partial_fill_keeps_the_filled_part(rig: _Rig) -> None:
    sell = rig.limit(Side.SHORT, "65000.1", quantity="4")  # the best ask: 5 ahead
    rig.mark("65000.1")  # buyers print 3 at 65000.1
    rig.mark("65000.0")
    rig.mark("65000.1")  # 3 more: 2 ahead, 1 for us
    assert sell.filled == D(1)
    rig.engine.cancel(rig.account, order_id=sell.id)
    assert (sell.status, sell.filled) == (OrderStatus.CANCELLED, D(1))
    assert rig.account.positions["BTC"].quantity == D(-1)
    rig.mark("65001")  # far through its price: a cancelled order fills no more
    assert sell.filled == D(1) and len(rig.account.fills) == 1


def test_post_only_that_would_take_is_still_refused_and_a_crossing_limit_still_takes(rig: _Rig) -> None:
    refused = rig.limit(Side.LONG, "65000.1", tif=TimeInForce.POST_ONLY)
    assert (refused.status, refused.expiry_reason) == (OrderStatus.EXPIRED, "PostOnlyTaker")
    taken = rig.limit(Side.LONG, "65000.1")
    assert taken.status is OrderStatus.FILLED
    assert [f.is_maker for f in rig.account.fills] == [False]


def test_modify_requeues_at_the_new_price_or_takes_when_it_crosses(rig: _Rig) -> None:
    buy = rig.limit(Side.LONG, "64990", tif=TimeInForce.POST_ONLY)
    assert buy.queue_ahead == 0  # beyond the displayed levels
    rig.engine.modify(rig.account, buy.id, quantity=D(2), price=D("64999.8"))
    assert buy.queue_ahead == D(5)
    with pytest.raises(SimRejectError, match="post-only"):
        rig.engine.modify(rig.account, buy.id, quantity=D(2), price=D("65000.1"))
    assert buy.price == D("64999.8") and buy.filled == 0
    plain = rig.limit(Side.LONG, "64990")
    rig.engine.modify(rig.account, plain.id, quantity=D(2), price=D("65000.1"))
    assert plain.status is OrderStatus.FILLED and rig.account.fills[-1].is_maker is False


def test_the_same_prices_give_the_same_fills() -> None:
    def run() -> list[tuple[D, D]]:
        rig = _Rig()
        rig.engine.tape = Tape("seeded")  # drawn volumes
        buy = rig.limit(Side.LONG, "64999.9", quantity="10")
        for price in ["64999.9", "65000", "64999.9", "65000", "64999.9", "65000", "64999.9"]:
            rig.mark(price)
        return [(f.price, f.quantity) for f in rig.account.fills] + [(buy.filled, buy.queue_ahead)]

    assert run() == run()
