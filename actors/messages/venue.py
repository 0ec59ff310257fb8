"""Messages to a venue's ExchangeActor and its replies."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from core.domain import Side, Venue
from core.gate import LegGate
from exchanges.base import Account, Fill, Market, OrderStatus, OrderType, Position, Quote, TimeInForce

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
class CancelOrder:
    """Cancel a resting order by client id; the reply is OrderAccepted (as it ended, or not final yet when the
    venue only accepted the cancel: look it up) or OrderUnknown."""

    symbol: str
    client_id: str


@dataclass(frozen=True, slots=True)
class GetOrderWatch:
    """The venue client's private order stream (exchanges/account_stream.py AccountStream), or None: what a
    maker order's hedger listens to for fills. Thread-safe; it dies with the actor's generation."""


@dataclass(frozen=True, slots=True)
class FetchFeeRates:
    """The account's maker and taker fee rates (exchanges.base.FeeRates)."""


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
