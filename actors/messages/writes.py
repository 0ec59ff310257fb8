"""Messages to the PersistenceWriter (ask: the reply means committed) and its replies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.domain import EventLevel, OrderPurpose, PairState, Venue
from core.ids import OrderKey, external_client_id
from core.ledger import OrderState
from storage.records import LegFigures, NewEvent, NewFill, NewOrder, OrderRecord, PairPlan, PositionRecord

# ---- to the PersistenceWriter (ask: the reply means committed) --------------------------------------------


@dataclass(frozen=True, slots=True)
class Adoption:
    """A venue position nobody accounts for, taken into the pair being created: its leg on `venue` holds the plan's
    quantity, booked as a filled `external` opening order; the pair goes on to OPENING and NAKED (`reason`)."""

    venue: Venue
    entry_price: Decimal | None
    reason: str


@dataclass(frozen=True, slots=True)
class CreatePair:
    """Insert a PLANNED pair with its two legs and a `pair_planned` event; for an adopted position (`adoption`),
    its order and its moves to NAKED too, all in one transaction."""

    plan: PairPlan
    leverage_set: tuple[tuple[Venue, Decimal], ...] = ()  # what each venue set, where it was set
    adoption: Adoption | None = None

    def then(
        self, pair_id: int, legs: Sequence[PositionRecord]
    ) -> tuple[RecordOrder | UpdateOrder | TransitionPair, ...]:
        """The writes that follow the insert once the pair and its legs have ids (none unless adopting)."""
        adopted = self.adoption
        if adopted is None:
            return ()
        leg = next(leg for leg in legs if leg.venue == adopted.venue)
        client_id = external_client_id(OrderKey(pair_id, leg.side, OrderPurpose.OPEN, 0))
        quantity = self.plan.quantity
        return (
            RecordOrder(
                NewOrder(pair_id, leg.id, leg.venue, client_id, OrderPurpose.OPEN, 0, leg.side, "external", quantity)
            ),
            UpdateOrder(
                leg.venue,
                client_id,
                OrderState.FILLED,
                filled_quantity=quantity,
                avg_price=adopted.entry_price,
                fee=Decimal(0),
                error="a position found on the venue that no pair accounted for",
            ),
            TransitionPair(pair_id, PairState.PLANNED, PairState.OPENING, "adopting an unknown position"),
            TransitionPair(pair_id, PairState.OPENING, PairState.NAKED, adopted.reason, level=EventLevel.CRITICAL),
        )

    def planned(self, pair_id: int) -> NewEvent:
        """The `pair_planned` event of the pair once it has its id."""
        p = self.plan
        return NewEvent(
            EventLevel.INFO,
            "pair_planned",
            f"pair {pair_id} planned: {p.market} long {p.long.venue} / short {p.short.venue}, "
            f"qty {p.quantity}, leverage {p.leverage}",
            pair_id,
            {"quantity": p.quantity, "leverage": p.leverage, "notional": p.notional},
        )


@dataclass(frozen=True, slots=True)
class BeginOpen:
    """Plan a pair, record both opening orders and move it to OPENING, in one transaction."""

    plan: PairPlan
    leverage_set: tuple[tuple[Venue, Decimal], ...]
    # Each venue's mid at the decision (the report's spread is priced against it), and the execution style.
    mids: tuple[tuple[Venue, Decimal], ...] = ()
    execution: str = "taker"

    @property
    def market_orders(self) -> bool:
        """Whether both opening orders are market orders recorded here (taker); a maker style records its own."""
        return self.execution == "taker"

    def create(self) -> CreatePair:
        """The pair's insert."""
        return CreatePair(self.plan, self.leverage_set)

    def opening(self, pair_id: int) -> TransitionPair:
        """The move to OPENING once the pair has its id and its orders are recorded."""
        figures: dict[str, Any] = {"quantity": self.plan.quantity, "leverage": self.plan.leverage}
        figures |= {"execution": self.execution, "mid": {v.value: mid for v, mid in self.mids}}
        reason = "sending both legs" if self.market_orders else f"trading both legs {self.execution}"
        return TransitionPair(pair_id, PairState.PLANNED, PairState.OPENING, reason, data=figures)


@dataclass(frozen=True, slots=True)
class OpenBegun:
    """BeginOpen committed: the pair, its legs (long first) and their orders, ready to send."""

    pair_id: int
    legs: tuple[PositionRecord, ...]
    orders: tuple[OrderRecord, ...]


@dataclass(frozen=True, slots=True)
class WriteBatch:
    """Several writes in one transaction (all commit or none does); answered with a tuple of their replies."""

    items: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class TransitionPair:
    """Move a pair expected -> to with an event row, in one transaction."""

    pair_id: int
    expected: PairState
    to: PairState
    reason: str
    changes: dict[str, Any] = field(default_factory=dict)
    level: EventLevel = EventLevel.INFO
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The event's message (and the log line's)."""
        return f"pair {self.pair_id}: {self.expected} -> {self.to}: {self.reason}"

    def event(self) -> NewEvent:
        """The event row written with the move."""
        data = {"from": self.expected, "to": self.to, "reason": self.reason, **self.data}
        return NewEvent(self.level, f"pair_{self.to.value}", self.text, self.pair_id, data)


@dataclass(frozen=True, slots=True)
class UpdatePosition:
    """Change a leg's figures (those `figures` does not KEEP)."""

    position_id: int
    figures: LegFigures


@dataclass(frozen=True, slots=True)
class RecordOrder:
    """Insert an order row before the order is sent."""

    order: NewOrder


@dataclass(frozen=True, slots=True)
class UpdateOrder:
    """Record what the venue said about an order."""

    venue: Venue
    client_id: str
    status: OrderState
    venue_order_id: str | None = None
    filled_quantity: Decimal | None = None
    avg_price: Decimal | None = None
    fee: Decimal | None = None
    error: str | None = None
    # The quantity the order was sent with, where it differs from the row's (a hedge recorded ahead of its fill).
    quantity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class RecordFills:
    """Insert fills (already stored ones are skipped)."""

    fills: tuple[NewFill, ...]


@dataclass(frozen=True, slots=True)
class RecordEvent:
    """Store an event (logged too)."""

    level: EventLevel
    kind: str
    message: str
    pair_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def event(self) -> NewEvent:
        """The event row."""
        return NewEvent(self.level, self.kind, self.message, self.pair_id, self.data)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Commit the engine's heartbeat and prove the database has room to grow: what `health` relies on."""

    ts: datetime


@dataclass(frozen=True, slots=True)
class SetMeta:
    """Store (or with None, remove) one small named value that must survive a restart, e.g. a pause."""

    key: str
    value: str | None


@dataclass(frozen=True, slots=True)
class RecordSnapshot:
    """Store one monitor reading of a pair (tell: losing one is fine)."""

    pair_id: int
    long_mark: Decimal | None
    short_mark: Decimal | None
    long_upnl: Decimal | None
    short_upnl: Decimal | None
    long_collateral_ratio: Decimal | None
    short_collateral_ratio: Decimal | None
    divergence: Decimal | None


@dataclass(frozen=True, slots=True)
class Written:
    """A write committed; `id` is the new row's id where there is one."""

    id: int | None = None
