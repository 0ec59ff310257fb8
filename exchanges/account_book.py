"""What a private account stream has heard about each order, merged so that late or repeated events never
undo what is known: cumulative quantities only grow, a final status stays final, a fill counts once.

Pure and not thread-safe: the AccountStream holds its lock around every call.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from core.domain import Side
from exchanges.base import Fill, OrderStatus

# A fill can only move an order forward; finals (filled, cancelled, expired, rejected) all rank alike, so the
# first final heard is kept: a venue does not finish one order twice.
_RANK = {OrderStatus.NEW: 0, OrderStatus.PARTIALLY_FILLED: 1}
_FINAL_RANK = 2


def _rank(status: OrderStatus) -> int:
    return _FINAL_RANK if status.is_final else _RANK[status]


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One private-stream event about one order, as a venue parser reads it. None: the event did not say."""

    venue_order_id: str
    client_id: str | None = None
    symbol: str | None = None
    side: Side | None = None
    status: OrderStatus | None = None
    quantity: Decimal | None = None
    filled_quantity: Decimal | None = None  # cumulative over the order's life
    filled_quote: Decimal | None = None  # cumulative quote amount, where the venue sends one
    fills: tuple[Fill, ...] = ()
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OrderView:
    """Everything heard about one order so far (fills oldest first by venue time, then trade id)."""

    venue_order_id: str
    client_id: str | None
    symbol: str | None
    side: Side | None
    status: OrderStatus | None
    quantity: Decimal | None
    filled_quantity: Decimal
    filled_quote: Decimal | None
    fills: tuple[Fill, ...]
    created_at: datetime | None
    # The end was heard with a cumulative count (or as filled in full): without one, fills missed or late
    # could not be told from "ended with nothing more filled".
    end_counted: bool = False

    @property
    def fills_quantity(self) -> Decimal:
        """The quantity of the fills heard."""
        return sum((f.quantity for f in self.fills), Decimal(0))

    @property
    def fills_complete(self) -> bool:
        """Every fill behind the cumulative filled quantity has been heard."""
        return self.fills_quantity == self.filled_quantity

    @property
    def settled(self) -> bool:
        """Final, with all its fills: nothing more will be heard that changes the outcome."""
        return self.status is not None and self.status.is_final and self.end_counted and self.fills_complete


@dataclass
class _Entry:
    venue_order_id: str
    client_id: str | None = None
    symbol: str | None = None
    side: Side | None = None
    status: OrderStatus | None = None
    quantity: Decimal | None = None
    reported_filled: Decimal = Decimal(0)
    filled_quote: Decimal | None = None
    fills: dict[str, Fill] = field(default_factory=dict)
    created_at: datetime | None = None
    end_counted: bool = False

    def apply(self, event: OrderEvent) -> None:
        self.client_id = self.client_id or event.client_id
        self.symbol = self.symbol or event.symbol
        self.side = self.side or event.side
        self.created_at = self.created_at or event.created_at
        if event.quantity is not None:
            self.quantity = event.quantity  # a reduce-only order may shrink (Backpack's orderModified)
        if event.status is not None and (self.status is None or _rank(event.status) > _rank(self.status)):
            self.status = event.status
        if event.status is not None and event.status.is_final and event.filled_quantity is not None:
            self.end_counted = True
        if event.filled_quantity is not None:
            self.reported_filled = max(self.reported_filled, event.filled_quantity)
        if event.filled_quote is not None:
            self.filled_quote = (
                event.filled_quote if self.filled_quote is None else max(self.filled_quote, event.filled_quote)
            )
        for fill in event.fills:
            self.fills.setdefault(fill.venue_fill_id, fill)

    def view(self) -> OrderView:
        fills = tuple(sorted(self.fills.values(), key=lambda f: (f.ts, _trade_key(f.venue_fill_id))))
        heard = sum((f.quantity for f in fills), Decimal(0))
        filled = max(self.reported_filled, heard)
        counted = self.end_counted
        if self.status is OrderStatus.FILLED and self.quantity is not None:
            filled = max(filled, self.quantity)  # a filled order filled all of it, whatever else was said
            counted = True
        return OrderView(
            self.venue_order_id, self.client_id, self.symbol, self.side, self.status, self.quantity,
            filled, self.filled_quote, fills, self.created_at, counted,
        )  # fmt: skip


def _trade_key(trade_id: str) -> tuple[int, str]:
    # Numeric ids sort as numbers ("10" after "9"); anything else after them, as text.
    return (int(trade_id), "") if trade_id.isdigit() else (1 << 63, trade_id)


class OrderBook:
    """Orders heard on a stream, by venue order id (and client id), keeping the most recent `max_orders`."""

    def __init__(self, max_orders: int = 4096) -> None:
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._by_client: dict[str, str] = {}
        self._max_orders = max_orders

    def __len__(self) -> int:
        return len(self._entries)

    def apply(self, event: OrderEvent) -> OrderView:
        """Merge one event; returns the order as now known."""
        entry = self._entries.get(event.venue_order_id)
        if entry is None:
            entry = self._entries[event.venue_order_id] = _Entry(event.venue_order_id)
            while len(self._entries) > self._max_orders:
                _, dropped = self._entries.popitem(last=False)
                if dropped.client_id is not None and self._by_client.get(dropped.client_id) == dropped.venue_order_id:
                    del self._by_client[dropped.client_id]
        entry.apply(event)
        if entry.client_id is not None:
            self._by_client[entry.client_id] = entry.venue_order_id
        return entry.view()

    def view(self, venue_order_id: str) -> OrderView | None:
        """The order with this venue id, or None if nothing was heard of it."""
        entry = self._entries.get(venue_order_id)
        return None if entry is None else entry.view()

    def view_by_client_id(self, client_id: str) -> OrderView | None:
        """The latest order heard under this client id, or None."""
        venue_order_id = self._by_client.get(client_id)
        return None if venue_order_id is None else self.view(venue_order_id)
