"""The venue-neutral interface: a PerpExchange protocol and the frozen types every venue parses into."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal, Protocol

from core.domain import Side, Venue


class OrderType(StrEnum):
    """Market or limit."""

    MARKET = "market"
    LIMIT = "limit"


class TimeInForce(StrEnum):
    """How long a limit order may rest."""

    GTC = "gtc"
    IOC = "ioc"
    POST_ONLY = "post_only"


class OrderStatus(StrEnum):
    """Venue-neutral order status."""

    NEW = "new"  # accepted, resting or about to execute
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # IOC/market remainder, post-only that would take, reduce-only that would not reduce
    REJECTED = "rejected"

    @property
    def is_final(self) -> bool:
        """No further fills can happen."""
        return self in {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED}


@dataclass(frozen=True, slots=True)
class Market:
    """A perp market's trading rules."""

    symbol: str
    tick_size: Decimal
    step_size: Decimal
    min_quantity: Decimal
    min_notional: Decimal
    max_leverage: Decimal


@dataclass(frozen=True, slots=True)
class Quote:
    """Best bid/ask, mark and funding of a market at a moment."""

    symbol: str
    bid: Decimal | None
    ask: Decimal | None
    mark: Decimal | None
    funding_rate: Decimal | None
    next_funding_time: datetime | None
    ts: datetime
    source: Literal["feed", "rest"] = "rest"


@dataclass(frozen=True, slots=True)
class Account:
    """Margin summary of the account (quote-currency amounts)."""

    equity: Decimal
    available: Decimal
    initial_requirement: Decimal
    maintenance_requirement: Decimal
    margin_fraction: Decimal | None


@dataclass(frozen=True, slots=True)
class FeeRates:
    """The account's trading fee rates as fractions of notional (0.0002 is 2 bps); negative is a rebate."""

    maker: Decimal
    taker: Decimal

    def rate(self, is_maker: bool | None) -> Decimal:
        """The rate a fill pays; an unknown side (None) is booked at the taker rate, the dearer assumption."""
        return self.maker if is_maker else self.taker


@dataclass(frozen=True, slots=True)
class Position:
    """One open position as the venue reports it (quantity unsigned, side says the direction)."""

    symbol: str
    side: Side
    quantity: Decimal
    entry_price: Decimal
    mark_price: Decimal | None
    unrealized_pnl: Decimal | None
    liquidation_price: Decimal | None


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order to send. `client_id` is our id in the venue's form, as text."""

    client_id: str
    symbol: str
    side: Side  # LONG buys, SHORT sells
    quantity: Decimal
    order_type: OrderType = OrderType.MARKET
    price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    # When our order row was written (before sending). A lost reply's lookup that finds an order the venue
    # created earlier than this found another database's order under the same id, not ours. None: unknown.
    created_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.quantity <= 0:
            raise ValueError(f"order quantity must be > 0, got {self.quantity}")
        if self.order_type is OrderType.LIMIT and (self.price is None or self.price <= 0):
            raise ValueError("a limit order needs a price > 0")
        if self.order_type is OrderType.MARKET and self.price is not None:
            raise ValueError("a market order takes no price")

    @property
    def immediate(self) -> bool:
        """A market or IOC order: finished within its own request, so its final state comes at once."""
        return self.order_type is OrderType.MARKET or self.time_in_force is TimeInForce.IOC


@dataclass(frozen=True, slots=True)
class OrderResult:
    """What the venue says about one order."""

    venue_order_id: str
    client_id: str | None
    symbol: str
    side: Side
    status: OrderStatus
    quantity: Decimal
    filled_quantity: Decimal
    average_price: Decimal | None
    fee: Decimal | None = None
    # The executions behind the totals when the client already read them (None: not read), so nobody
    # pages the venue's fills a second time for the same order.
    fills: tuple[Fill, ...] | None = None
    # When the venue created the order (None: the reply did not say), for telling ours from an older one.
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class WireMark:
    """One request on the wire, in real time (time.monotonic_ns, system-wide on Linux): handed to the HTTP
    library, reply read; and, from a loopback simulator only, when the venue received it."""

    method: str
    path: str
    sent_ns: int
    answered_ns: int
    venue_received_ns: int | None = None


@dataclass(eq=False)
class PreparedOrder:
    """An order its venue's client has validated, built and signed, with nothing sent yet: `send_order` sends it,
    once. `marks` gathers the wire stamps of every request the client makes for this order (a check before
    it, the order itself, a re-send after a clock refusal, read-backs and lookups), in order.

    Clients extend it with what they need to send; this base class is what test doubles return."""

    request: OrderRequest
    marks: list[WireMark] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution."""

    venue_fill_id: str
    venue_order_id: str
    client_id: str | None
    symbol: str
    side: Side
    price: Decimal
    quantity: Decimal
    fee: Decimal
    fee_asset: str | None
    is_maker: bool | None
    ts: datetime


@dataclass(frozen=True, slots=True)
class FundingPayment:
    """A funding settlement: amount > 0 received, < 0 paid."""

    symbol: str
    amount: Decimal
    rate: Decimal | None
    ts: datetime


class PerpExchange(Protocol):
    """What the engine needs from a perp venue. Quirks are attributes, never venue-name branches."""

    venue: Venue
    leverage_scope: Literal["account", "market"]

    @property
    def request_expiry_s(self) -> float:
        """Seconds after sending beyond which the venue can no longer accept a request of ours."""
        ...

    def markets(self) -> list[Market]:
        """Every perp market with its rules."""
        ...

    def market(self, symbol: str) -> Market:
        """One market's rules (cached after the first load)."""
        ...

    def quote(self, symbol: str) -> Quote:
        """Bid, ask, mark and funding over REST."""
        ...

    def account(self) -> Account:
        """Equity, free collateral and margin requirements."""
        ...

    def positions(self) -> list[Position]:
        """Open positions."""
        ...

    def fee_rates(self) -> FeeRates:
        """This account's maker and taker fee rates as the venue states them."""
        ...

    @property
    def clock_offset_ms(self) -> int:
        """The venue's clock minus ours, as last measured (0 before any measurement)."""
        ...

    def sync_time(self) -> int:
        """Measure the offset from the venue's clock and sign with it from now on; returns it in ms."""
        ...

    def prepare_order(self, request: OrderRequest) -> PreparedOrder:
        """Validate, build and sign an order and prepare its HTTP request; nothing is sent. Raises what
        `place_order` raises before sending: ValueError or InvalidOrder (refused locally), VenueError (no
        credentials, maintenance, a failed read the order needs)."""
        ...

    def send_order(self, prepared: PreparedOrder) -> OrderResult:
        """Send a prepared order (once; a second call raises RuntimeError) and learn its outcome. A lost reply
        is never re-sent but looked up once the venue can no longer accept the request; OrderOutcomeUnknown
        when even that failed."""
        ...

    def place_order(self, request: OrderRequest) -> OrderResult:
        """`send_order(prepare_order(request))`."""
        ...

    def cancel_order(self, symbol: str, client_id: str) -> OrderResult | None:
        """Cancel by client id. None: accepted, not yet carried out. A finished order comes back as it ended;
        OrderNotFound only when the venue has no such order."""
        ...

    def get_order(self, symbol: str, client_id: str) -> OrderResult:
        """An order by client id, resting or finished; OrderNotFound when the venue has none."""
        ...

    def fills(self, symbol: str, venue_order_id: str | None = None) -> list[Fill]:
        """Recent fills of a market, or of one order."""
        ...

    def funding_payments(self, symbol: str) -> list[FundingPayment]:
        """Recent funding settlements of a market."""
        ...

    def set_leverage(self, symbol: str, leverage: Decimal) -> Decimal:
        """Set the leverage used for `symbol` (account-wide on some venues); returns what was set."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
