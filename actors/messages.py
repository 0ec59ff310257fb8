"""Every message between actors, and every reply: frozen dataclasses, grouped by receiver.

Whatever changes the world goes by `ask` (the reply, or the exception, is the outcome); `tell` carries
only notifications that may be lost (ticks, snapshots).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from core.domain import EventLevel, OrderPurpose, PairState, Side, Venue
from core.gate import LegGate
from core.ids import OrderKey, external_client_id
from core.ledger import OrderState
from core.limits import Trip
from exchanges.base import Account, Fill, Market, OrderStatus, OrderType, Position, Quote, TimeInForce
from storage.records import LegFigures, NewEvent, NewFill, NewOrder, OrderRecord, PairPlan, PositionRecord

# ---- to an ExchangeActor ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """Send one order; the reply is OrderAccepted, OrderRejected or OrderInFlight."""

    client_id: str
    symbol: str
    side: Side
    quantity: Decimal
    order_type: OrderType = OrderType.MARKET
    price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    # Set for the legs of an open: the venue's actor prepares the order, waits there until the other leg's is
    # prepared too, then sends it (arm-and-fire, core/gate.py).
    gate: LegGate | None = field(default=None, compare=False)
    # When our order row was written: a lost reply's lookup that finds an order older than this under our
    # client id has found another database's order, not ours (core/ids.py predates_our_order).
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LookupOrder:
    """What the venue knows of an order; the reply is OrderAccepted (any status) or OrderUnknown."""

    symbol: str
    client_id: str


@dataclass(frozen=True, slots=True)
class SetLeverage:
    """Set the leverage used for `symbol`."""

    symbol: str
    leverage: Decimal


@dataclass(frozen=True, slots=True)
class GetQuote:
    """The freshest quote: the feed's if younger than the staleness threshold, else REST."""

    symbol: str


@dataclass(frozen=True, slots=True)
class FetchPositions:
    """Open positions on the venue (REST)."""


@dataclass(frozen=True, slots=True)
class FetchAccount:
    """Equity and margin of the venue account (REST)."""


@dataclass(frozen=True, slots=True)
class FetchMarket:
    """A market's trading rules."""

    symbol: str


@dataclass(frozen=True, slots=True)
class FetchFills:
    """The fills of one order."""

    symbol: str
    venue_order_id: str


@dataclass(frozen=True, slots=True)
class FetchFunding:
    """Recent funding settlements of one market (the reply is a tuple of FundingPayment)."""

    symbol: str


@dataclass(frozen=True, slots=True)
class GetFeedState:
    """Age of the feed's last message per symbol, and whether it is connected."""


# ---- replies of an ExchangeActor ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderAccepted:
    """The venue has the order; `status` and `filled_quantity` say how far it got."""

    venue: Venue
    client_id: str
    venue_order_id: str
    status: OrderStatus
    quantity: Decimal
    filled_quantity: Decimal
    average_price: Decimal | None
    fee: Decimal | None
    fills: tuple[Fill, ...] = ()
    created_at: datetime | None = None  # the venue's own creation time, where its reply gives one


@dataclass(frozen=True, slots=True)
class OrderRejected:
    """A definitive refusal: the order does not exist on the venue."""

    venue: Venue
    client_id: str
    code: str | None
    message: str
    retryable: bool = False  # rate limit, maintenance, "not placed" after a lost reply


@dataclass(frozen=True, slots=True)
class OrderInFlight:
    """The outcome is unknown (reply lost and the lookup failed): look it up again before anything else."""

    venue: Venue
    client_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class OrderUnknown:
    """The venue has no order with that client id; `expiry_s` after sending, none can appear any more."""

    venue: Venue
    client_id: str
    expiry_s: float = 60.0


@dataclass(frozen=True, slots=True)
class LeverageSet:
    """What was set, and whether it applies to the whole account or one market."""

    venue: Venue
    symbol: str
    leverage: Decimal
    scope: str


@dataclass(frozen=True, slots=True)
class Positions:
    """The venue's open positions."""

    venue: Venue
    items: tuple[Position, ...]
    ts: datetime


@dataclass(frozen=True, slots=True)
class AccountReport:
    """The venue account's margin summary."""

    venue: Venue
    account: Account
    ts: datetime


@dataclass(frozen=True, slots=True)
class MarketRules:
    """A market's rules on one venue."""

    venue: Venue
    market: Market


@dataclass(frozen=True, slots=True)
class QuoteReply:
    """A quote and where it came from."""

    venue: Venue
    quote: Quote


@dataclass(frozen=True, slots=True)
class FeedState:
    """How fresh the venue's websocket feed is."""

    venue: Venue
    connected: bool
    ages_s: dict[str, float | None]
    connections: int
    messages: int = 0  # data messages applied since the feed started


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

    def create(self) -> CreatePair:
        """The pair's insert."""
        return CreatePair(self.plan, self.leverage_set)

    def opening(self, pair_id: int) -> TransitionPair:
        """The move to OPENING once the pair has its id and its orders are recorded."""
        figures = {"quantity": self.plan.quantity, "leverage": self.plan.leverage}
        return TransitionPair(pair_id, PairState.PLANNED, PairState.OPENING, "sending both legs", data=figures)


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


# ---- to the HedgeCoordinator, Closer and Monitor -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tick:
    """Time to look at the world again."""

    now: datetime


class TradingMode(StrEnum):
    """Whether new pairs may open."""

    NORMAL = "normal"
    PAUSED = "paused"


@dataclass(frozen=True, slots=True)
class SetTradingMode:
    """Pause or resume opening (closing and monitoring go on). The coordinator alone applies it to the gate.
    `kept`: this is the operator's pause, kept in the database (actors.gate.PAUSE) before the message was sent."""

    mode: TradingMode
    reason: str
    kept: bool = False


@dataclass(frozen=True, slots=True)
class BlockOpening:
    """Hold opening back for `reason` until UnblockOpening(key) (a venue position nobody accounts for, a limit)."""

    key: str
    reason: str


@dataclass(frozen=True, slots=True)
class UnblockOpening:
    """Lift the block kept under `key`."""

    key: str


@dataclass(frozen=True, slots=True)
class OpenNow:
    """Open a pair now if the rules allow (ignores the cooldown)."""

    market: str | None = None


@dataclass(frozen=True, slots=True)
class PairOpened:
    """A pair is OPEN (its open's timing: actors.timing.Timings.open)."""

    pair_id: int


@dataclass(frozen=True, slots=True)
class PairFailed:
    """A pair did not open; its state says whether it is flat (FAILED) or not (NAKED)."""

    pair_id: int
    state: PairState
    reason: str


@dataclass(frozen=True, slots=True)
class OpenDeclined:
    """Nothing was sent: the rules did not allow a pair now."""

    reason: str


@dataclass(frozen=True, slots=True)
class ClosePair:
    """Close one pair now."""

    pair_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class CloseAll:
    """Close every open pair now."""

    reason: str


@dataclass(frozen=True, slots=True)
class LimitBreached:
    """A tripped limit demands these pairs close now (None: every live pair), whatever the retry schedule says.
    A tell from the Monitor: the kill switch and the collateral close ask again on later ticks while they last."""

    trip: Trip
    pair_ids: tuple[int, ...] | None


@dataclass(frozen=True, slots=True)
class LegVanished:
    """From the Monitor: for readings in a row, a venue has held less than these OPEN or CLOSING pairs' legs
    (liquidated, or closed outside the farmer). The Closer turns them NAKED and repairs them."""

    venue: Venue
    symbol: str
    venue_quantity: Decimal  # signed: + long
    expected: Decimal  # what the pairs hold, signed
    pair_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class UnknownPosition:
    """From the Monitor: for readings in a row, a venue has held `quantity` (signed: + long) of `symbol` beyond
    what any pair holds. The Closer applies reconcile.unknown_positions (alert: leave it; close: adopt what the
    venue holds beyond the pairs when it reads it again), so a repeated report never adopts twice."""

    venue: Venue
    symbol: str
    quantity: Decimal
    entry_price: Decimal | None


@dataclass(frozen=True, slots=True)
class CloseResult:
    """Where the pairs a close touched stand now."""

    states: dict[int, PairState]


@dataclass(frozen=True, slots=True)
class ReconcilePairs:
    """Start-up: settle every unfinished pair against the venues before anything opens."""


@dataclass(frozen=True, slots=True)
class ReconcilePositions:
    """Compare the venues' positions with the pairs now (no waiting for a second reading)."""


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What a reconciliation decided, and whether it could settle everything."""

    complete: bool
    decisions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GetStatus:
    """An actor's own summary for the status command."""


@dataclass(frozen=True, slots=True)
class StatusReply:
    """Free-form status figures of one actor (JSON-able)."""

    name: str
    data: dict[str, Any]


# ---- supervision --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ping:
    """Are you alive and serving?"""


@dataclass(frozen=True, slots=True)
class Pong:
    """Alive: who and which generation."""

    name: str
    generation: int
    started_at: datetime
