"""A leg's books from its orders: what it holds, what it paid, what it made. Pure.

The orders table is the ledger: a leg holds what its OPEN orders filled minus what its CLOSE, ROLLBACK and
REPAIR orders filled. An order whose outcome is not known yet blocks every decision about its leg.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from core.domain import OrderPurpose, Side


class OrderState(StrEnum):
    """An order row's status: two of our own before the venue has answered (recorded but not sent yet; sent with
    no known outcome), then the venue's (the values of exchanges.base.OrderStatus, which converts by value)."""

    CREATED = "created"
    IN_FLIGHT = "in_flight"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected"


class PositionState(StrEnum):
    """A leg row's state: planned, holding, or done with."""

    PENDING = "pending"
    OPEN = "open"
    CLOSED = "closed"


UNRESOLVED = frozenset({OrderState.CREATED, OrderState.IN_FLIGHT})
# A venue status after which no further fill can come.
FINAL = frozenset({OrderState.FILLED, OrderState.CANCELLED, OrderState.EXPIRED, OrderState.REJECTED})


class OrderLike(Protocol):
    """The fields of an order row the ledger reads."""

    @property
    def purpose(self) -> OrderPurpose: ...  # noqa: D102
    @property
    def status(self) -> OrderState: ...  # noqa: D102
    @property
    def filled_quantity(self) -> Decimal: ...  # noqa: D102
    @property
    def avg_price(self) -> Decimal | None: ...  # noqa: D102
    @property
    def fee(self) -> Decimal | None: ...  # noqa: D102


def is_unresolved(order: OrderLike) -> bool:
    """Sent (or about to be) and not yet known to be final or rejected: a lookup must settle it first."""
    return order.status in UNRESOLVED or order.status not in FINAL


def net_quantity(orders: Iterable[OrderLike]) -> Decimal:
    """What the leg holds: opened minus reduced (never negative: reduce-only orders cannot flip a leg)."""
    total = Decimal(0)
    for o in orders:
        total += o.filled_quantity if o.purpose is OrderPurpose.OPEN else -o.filled_quantity
    return max(total, Decimal(0))


def _vwap(orders: list[OrderLike]) -> tuple[Decimal, Decimal | None]:
    """(quantity, average price). A fill booked without a price (an adopted position, a vanished leg) counts
    in the quantity but not in the average: taken at 0 it would drag the average and the PnL with it."""
    quantity = sum((o.filled_quantity for o in orders), Decimal(0))
    priced = [o for o in orders if o.avg_price is not None]
    priced_quantity = sum((o.filled_quantity for o in priced), Decimal(0))
    if priced_quantity == 0:
        return quantity, None
    notional = sum((o.filled_quantity * o.avg_price for o in priced if o.avg_price is not None), Decimal(0))
    return quantity, notional / priced_quantity


@dataclass(frozen=True, slots=True)
class LegBook:
    """One leg's totals: quantities and prices in and out, fees, volume and realized PnL (before funding)."""

    side: Side
    opened: Decimal
    entry_price: Decimal | None
    reduced: Decimal
    exit_price: Decimal | None
    fees: Decimal
    volume: Decimal
    realized_pnl: Decimal

    @property
    def held(self) -> Decimal:
        """Quantity still open."""
        return max(self.opened - self.reduced, Decimal(0))


def leg_book(side: Side, orders: Iterable[OrderLike]) -> LegBook:
    """The books of a leg held on `side`, from all its orders."""
    orders = [o for o in orders if o.filled_quantity > 0]
    opens = [o for o in orders if o.purpose is OrderPurpose.OPEN]
    reduces = [o for o in orders if o.purpose is not OrderPurpose.OPEN]
    opened, entry = _vwap(opens)
    reduced, exit_ = _vwap(reduces)
    fees = sum((o.fee or Decimal(0) for o in orders), Decimal(0))
    volume = sum((o.filled_quantity * (o.avg_price or Decimal(0)) for o in orders), Decimal(0))
    realized = Decimal(0)
    if entry is not None and exit_ is not None:
        realized = side.sign * (exit_ - entry) * min(opened, reduced)
    return LegBook(side, opened, entry, reduced, exit_, fees, volume, realized)


def backoff_s(attempt: int, minimum: Decimal, maximum: Decimal) -> Decimal:
    """Delay before retry number `attempt` (0-based): minimum x 2^attempt, capped at maximum."""
    return min(maximum, minimum * (2 ** min(attempt, 30)))
