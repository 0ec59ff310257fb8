"""Fake peers for testing one actor on its own: a venue actor that answers the ExchangeActor's messages from a
script, as Mopidy's tests run the core against a dummy backend. It is a real pykka actor, so the actor under test
talks to it through the same Directory, asks and futures as in production; only the venue behind it is made up.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from actors.base import SupervisedActor
from actors.messages import (
    AccountReport,
    FeedState,
    FetchAccount,
    FetchFunding,
    FetchMarket,
    FetchPositions,
    GetFeedState,
    GetQuote,
    LeverageSet,
    LookupOrder,
    MarketRules,
    OrderAccepted,
    OrderInFlight,
    OrderRejected,
    OrderUnknown,
    PlaceOrder,
    Positions,
    QuoteReply,
    SetLeverage,
)
from core.clock import Clock
from core.domain import Side, Venue
from exchanges.base import Account, Fill, FundingPayment, Market, OrderStatus, Position, Quote

MARK = Decimal(100)
STEP = Decimal("0.001")


@dataclass(frozen=True, slots=True)
class Fills:
    """Fill the order: all of it (quantity None) or that much, at `price`."""

    quantity: Decimal | None = None
    price: Decimal = MARK


@dataclass(frozen=True, slots=True)
class Refuses:
    """Refuse the order definitively (nothing exists on the venue)."""

    message: str = "insufficient margin"
    code: str | None = "INSUFFICIENT_MARGIN"


@dataclass(frozen=True, slots=True)
class LosesReply:
    """The reply is lost: the caller hears OrderInFlight. `then` is what the venue actually did (a later lookup
    finds it), or None when the order never reached the venue."""

    then: Fills | None = None


Behaviour = Fills | Refuses | LosesReply
Script = Callable[[PlaceOrder], Behaviour]


@dataclass
class VenueBook:
    """What the fake venue holds: orders by client id and net positions by symbol (thread-safe, inspectable)."""

    venue: Venue
    orders: dict[str, OrderAccepted] = field(default_factory=dict)
    positions: dict[str, Decimal] = field(default_factory=dict)  # signed: + long, - short
    placed: list[PlaceOrder] = field(default_factory=list)
    funding: list[FundingPayment] = field(default_factory=list)
    quotes: list[str] = field(default_factory=list)  # the symbols whose quote was asked, in order
    lock: threading.Lock = field(default_factory=threading.Lock)

    def held(self, symbol: str) -> Decimal:
        """Net position in `symbol` (+ long, - short)."""
        with self.lock:
            return self.positions.get(symbol, Decimal(0))


class FakeVenue(SupervisedActor):
    """Answers what an ExchangeActor answers, from `script` (default: every order fills in full at the mark)."""

    _ids = itertools.count(1)

    def __init__(self, name: str, clock: Clock, *, book: VenueBook, script: Script | None = None) -> None:
        super().__init__(name, 1, clock)
        self.book = book
        self.script: Script = script or (lambda _order: Fills())

    def handle(self, message: Any) -> Any:
        """Dispatch one message the way ExchangeActor does."""
        venue = self.book.venue
        match message:
            case PlaceOrder():
                return self._place(message)
            case LookupOrder(client_id=client_id):
                with self.book.lock:
                    found = self.book.orders.get(client_id)
                return found if found is not None else OrderUnknown(venue, client_id, expiry_s=1.0)
            case GetQuote(symbol=symbol):
                with self.book.lock:
                    self.book.quotes.append(symbol)
                return QuoteReply(venue, Quote(symbol, MARK - 1, MARK + 1, MARK, Decimal(0), None, self.clock.now()))
            case FetchMarket(symbol=symbol):
                return MarketRules(venue, Market(symbol, Decimal("0.1"), STEP, STEP, Decimal(1), Decimal(20)))
            case FetchAccount():
                account = Account(Decimal(10_000), Decimal(10_000), Decimal(0), Decimal(1), None)
                return AccountReport(venue, account, self.clock.now())
            case FetchPositions():
                return Positions(venue, self._positions(), self.clock.now())
            case SetLeverage(symbol=symbol, leverage=leverage):
                return LeverageSet(venue, symbol, leverage, "market")
            case FetchFunding(symbol=symbol):
                with self.book.lock:
                    return tuple(p for p in self.book.funding if p.symbol == symbol)
            case GetFeedState():
                return FeedState(venue, True, {}, 1)
        return super().handle(message)

    def _positions(self) -> tuple[Position, ...]:
        with self.book.lock:
            held = dict(self.book.positions)
        return tuple(
            Position(symbol, Side.LONG if q > 0 else Side.SHORT, abs(q), MARK, MARK, Decimal(0), None)
            for symbol, q in held.items()
            if q != 0
        )

    def _place(self, order: PlaceOrder) -> OrderAccepted | OrderRejected | OrderInFlight:
        venue = self.book.venue
        with self.book.lock:
            self.book.placed.append(order)
        if order.gate is not None:
            order.gate.abandon()  # nobody is held for a fake: the partner leg goes at once
        behaviour = self.script(order)
        if isinstance(behaviour, Refuses):
            return OrderRejected(venue, order.client_id, behaviour.code, behaviour.message)
        if isinstance(behaviour, LosesReply):
            if behaviour.then is not None:
                self._execute(order, behaviour.then)
            return OrderInFlight(venue, order.client_id, "reply lost (scripted)")
        return self._execute(order, behaviour)

    def _execute(self, order: PlaceOrder, fills: Fills) -> OrderAccepted:
        quantity = order.quantity if fills.quantity is None else min(fills.quantity, order.quantity)
        if order.reduce_only:  # a reduce-only order never grows or flips the position
            with self.book.lock:
                quantity = min(quantity, abs(self.book.positions.get(order.symbol, Decimal(0))))
        number = next(self._ids)
        now: datetime = self.clock.now()
        fill = Fill(f"f{number}", f"o{number}", order.client_id, order.symbol, order.side, fills.price, quantity,
                    Decimal("0.01"), "USD", False, now)  # fmt: skip
        status = OrderStatus.FILLED if quantity == order.quantity else OrderStatus.CANCELLED
        reply = OrderAccepted(
            self.book.venue,
            order.client_id,
            f"o{number}",
            status,
            order.quantity,
            quantity,
            fills.price if quantity > 0 else None,
            fill.fee if quantity > 0 else Decimal(0),
            (fill,) if quantity > 0 else (),
            created_at=now,
        )
        with self.book.lock:
            self.book.orders[order.client_id] = reply
            signed = quantity if order.side is Side.LONG else -quantity
            self.book.positions[order.symbol] = self.book.positions.get(order.symbol, Decimal(0)) + signed
        return reply
