"""Ledger rules the mutation run (mutmut over core/ledger.py) showed no test pinned."""

from __future__ import annotations

from decimal import Decimal as D

from core.domain import OrderPurpose, Side
from core.ledger import leg_book
from tests.unit.test_engine_logic import Ord  # the order stand-in the ledger tests share


def test_a_leg_that_only_opened_has_no_realized_pnl_and_keeps_its_side() -> None:
    book = leg_book(Side.SHORT, [Ord(OrderPurpose.OPEN, "filled", D(2), D(100), D("0.1"))])
    assert book.side is Side.SHORT
    assert (book.opened, book.entry_price, book.reduced, book.exit_price) == (D(2), D(100), D(0), None)
    assert book.realized_pnl == 0
    assert book.held == D(2)


def test_an_order_without_a_fee_adds_no_fee() -> None:
    orders = [
        Ord(OrderPurpose.OPEN, "filled", D(1), D(100), None),
        Ord(OrderPurpose.OPEN, "filled", D(1), D(102), D("0.25")),
    ]
    book = leg_book(Side.LONG, orders)
    assert book.fees == D("0.25")
    assert book.entry_price == D(101)


def test_an_empty_leg_books_decimal_zeros() -> None:
    book = leg_book(Side.LONG, [Ord(OrderPurpose.OPEN, "rejected", D(0))])
    for value in (book.opened, book.reduced, book.fees, book.volume, book.realized_pnl, book.held):
        assert value == 0
        assert isinstance(value, D)  # the books are Decimal throughout, even when empty
    assert (book.entry_price, book.exit_price) == (None, None)


def test_a_fill_booked_without_a_price_does_not_drag_the_average() -> None:
    # An adopted position or a vanished leg is booked with the price the venue gave, which can be unknown.
    orders = [
        Ord(OrderPurpose.OPEN, "filled", D(1), D(100)),
        Ord(OrderPurpose.OPEN, "filled", D(1), None),  # book_external(price=None)
        Ord(OrderPurpose.CLOSE, "filled", D(2), D(110)),
    ]
    book = leg_book(Side.LONG, orders)
    assert (book.opened, book.entry_price, book.exit_price) == (D(2), D(100), D(110))
    assert book.realized_pnl == D(20)


def test_a_leg_whose_only_fill_has_no_price_has_no_price() -> None:
    book = leg_book(Side.SHORT, [Ord(OrderPurpose.OPEN, "filled", D(1), None)])
    assert (book.opened, book.entry_price, book.realized_pnl) == (D(1), None, D(0))
