"""The account stream's order book: late, repeated and reordered events never undo what is known."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from core.domain import Side
from exchanges.account_book import OrderBook, OrderEvent
from exchanges.base import Fill, OrderStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def fill(trade_id: str, qty: str, price: str = "100", fee: str = "0.01", at: int = 0) -> Fill:
    return Fill(trade_id, "9", "42", "BTC", Side.LONG, D(price), D(qty), D(fee), "USDC", False,
                T0 + timedelta(milliseconds=at))  # fmt: skip


def event(status: OrderStatus | None, filled: str | None, *fills: Fill, quantity: str = "2") -> OrderEvent:
    return OrderEvent(
        "9", "42", "BTC", Side.LONG, status, D(quantity), None if filled is None else D(filled), None, tuple(fills)
    )


def test_an_order_settles_once_final_with_every_fill() -> None:
    book = OrderBook()
    assert book.view("9") is None
    view = book.apply(event(OrderStatus.NEW, "0"))
    assert not view.settled and view.fills_complete
    view = book.apply(event(OrderStatus.PARTIALLY_FILLED, "1", fill("1", "1")))
    assert not view.settled and view.filled_quantity == D(1)
    view = book.apply(event(OrderStatus.FILLED, "2", fill("2", "1", "101", at=1)))
    assert view.settled
    assert [f.venue_fill_id for f in view.fills] == ["1", "2"]
    assert book.view_by_client_id("42") == view


def test_a_final_status_heard_before_its_fills_waits_for_them() -> None:
    book = OrderBook()
    view = book.apply(event(OrderStatus.FILLED, "2"))
    assert view.status is OrderStatus.FILLED and not view.settled
    view = book.apply(event(OrderStatus.PARTIALLY_FILLED, "1", fill("1", "1")))
    assert view.status is OrderStatus.FILLED and view.filled_quantity == D(2) and not view.settled
    assert book.apply(event(OrderStatus.NEW, "0")).status is OrderStatus.FILLED
    assert book.apply(event(OrderStatus.FILLED, "2", fill("2", "1"))).settled


def test_a_repeated_fill_counts_once_and_quantities_never_shrink() -> None:
    book = OrderBook()
    book.apply(event(OrderStatus.PARTIALLY_FILLED, "1", fill("1", "1")))
    view = book.apply(event(OrderStatus.PARTIALLY_FILLED, "1", fill("1", "1")))
    assert view.fills_quantity == D(1) and len(view.fills) == 1
    view = book.apply(event(None, "0"))
    assert view.filled_quantity == D(1) and view.status is OrderStatus.PARTIALLY_FILLED


def test_a_filled_order_is_filled_in_full_whatever_its_last_count_said() -> None:
    view = OrderBook().apply(event(OrderStatus.FILLED, None, fill("1", "1")))
    assert view.filled_quantity == D(2) and not view.settled


def test_the_first_final_status_stays() -> None:
    book = OrderBook()
    book.apply(event(OrderStatus.EXPIRED, "0"))
    assert book.apply(event(OrderStatus.CANCELLED, "0")).status is OrderStatus.EXPIRED


def test_the_oldest_orders_are_forgotten_beyond_the_limit() -> None:
    book = OrderBook(max_orders=2)
    for order_id, client_id in (("1", "a"), ("2", "b"), ("3", "c")):
        book.apply(OrderEvent(order_id, client_id, status=OrderStatus.NEW))
    assert len(book) == 2 and book.view("1") is None and book.view_by_client_id("a") is None
    assert book.view("3") is not None and book.view_by_client_id("c") is not None


def test_an_order_that_ended_without_saying_how_much_filled_is_not_settled() -> None:
    # `z` is optional on Backpack's events (AsyncAPI): an expiry that does not count, heard before a fill that
    # is late or lost, must not read as "ended with nothing filled".
    book = OrderBook()
    view = book.apply(event(OrderStatus.EXPIRED, None))
    assert view.status is OrderStatus.EXPIRED and not view.settled
    view = book.apply(event(OrderStatus.PARTIALLY_FILLED, "1", fill("1", "1")))
    assert not view.settled  # still no count that came with the end
    assert book.apply(event(OrderStatus.EXPIRED, "1")).settled
    # A fill of the whole order needs no count besides the quantity.
    assert OrderBook().apply(event(OrderStatus.FILLED, None, fill("1", "2"))).settled
