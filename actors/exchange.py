"""ExchangeActor: one per venue. Owns the venue client and its price feed; turns venue errors into outcomes.

Places answer OrderAccepted, OrderRejected (definitive, nothing on the venue) or OrderInFlight (unknown:
look it up). Reads raise the venue's typed error to the caller, which decides. A place is prepared, held at
its LegGate (the legs of an open) and then sent; its wire timing goes to the engine's Timings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from actors.base import DeathCallback, SupervisedActor
from actors.messages import (
    AccountReport,
    CancelOrder,
    FeedState,
    FetchAccount,
    FetchFeeRates,
    FetchFills,
    FetchFunding,
    FetchMarket,
    FetchPositions,
    GetFeedState,
    GetOrderWatch,
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
from actors.timing import Timings, wire_timing
from core.clock import Clock
from core.domain import Venue
from exchanges.base import OrderRequest, OrderResult, PerpExchange, PreparedOrder
from exchanges.errors import OrderNotFound, OrderOutcomeUnknown, VenueError
from exchanges.feed import PriceFeed
from exchanges.held_writes import legs_together

log = logging.getLogger(__name__)

VenueFactory = Callable[[], tuple[PerpExchange, PriceFeed | None]]


class ExchangeActor(SupervisedActor):
    """The only path to one venue: REST client, websocket feed, freshest quote per market."""

    def __init__(
        self,
        name: str,
        generation: int,
        clock: Clock,
        on_death: DeathCallback | None,
        *,
        venue: Venue,
        factory: VenueFactory,
        stale_after_s: float,
        timings: Timings | None = None,
    ) -> None:
        super().__init__(name, generation, clock, on_death)
        self.venue = venue
        self._factory = factory
        self._stale_after_s = stale_after_s
        self._timings = timings if timings is not None else Timings()
        self.client: PerpExchange | None = None
        self.feed: PriceFeed | None = None

    def on_start(self) -> None:
        """Build a fresh client and feed (a restart never reuses the dead generation's connections)."""
        self.client, self.feed = self._factory()
        if self.feed is not None:
            self.feed.start()
        try:
            offset = self.client.sync_time()
            log.info("%s clock offset %d ms", self.venue, offset)
        except VenueError as exc:
            log.warning("%s: clock sync failed (%s); signing with the local clock", self.venue, exc)

    def release(self) -> None:
        """Stop the feed thread and close the HTTP session."""
        if self.feed is not None:
            self.feed.stop(timeout_s=2)
        if self.client is not None:
            self.client.close()

    @property
    def _client(self) -> PerpExchange:
        if self.client is None:
            raise RuntimeError(f"{self.name}: not started")
        return self.client

    def handle(self, message: Any) -> Any:
        """Dispatch one message."""
        c = self._client
        match message:
            case PlaceOrder():
                return self._place(message)
            case LookupOrder(symbol=symbol, client_id=client_id):
                return self._lookup(symbol, client_id)
            case CancelOrder(symbol=symbol, client_id=client_id):
                return self._cancel(symbol, client_id)
            case GetOrderWatch() | FetchFeeRates():
                return self._account_part(message)
            case GetQuote(symbol=symbol):
                return QuoteReply(self.venue, self._quote(symbol))
            case FetchPositions():
                return Positions(self.venue, tuple(c.positions()), self.clock.now())
            case FetchAccount():
                return AccountReport(self.venue, c.account(), self.clock.now())
            case FetchMarket(symbol=symbol):
                return MarketRules(self.venue, c.market(symbol))
            case FetchFills(symbol=symbol, venue_order_id=order_id):
                return tuple(c.fills(symbol, order_id))
            case FetchFunding(symbol=symbol):
                return tuple(c.funding_payments(symbol))
            case SetLeverage(symbol=symbol, leverage=leverage):
                return LeverageSet(self.venue, symbol, c.set_leverage(symbol, leverage), c.leverage_scope)
            case GetFeedState():
                return self._feed_state()
        return super().handle(message)

    def _account_part(self, message: GetOrderWatch | FetchFeeRates) -> Any:
        if isinstance(message, FetchFeeRates):
            return self._client.fee_rates()
        # Optional on a client (a venue without a private stream has none): the hedger then polls.
        return getattr(self._client, "account_stream", None)

    def _lookup(self, symbol: str, client_id: str) -> OrderAccepted | OrderUnknown:
        try:
            return self._accepted(self._client.get_order(symbol, client_id), client_id)
        except OrderNotFound:
            return OrderUnknown(self.venue, client_id, self._client.request_expiry_s)

    def _cancel(self, symbol: str, client_id: str) -> OrderAccepted | OrderUnknown:
        c = self._client
        try:
            ended = c.cancel_order(symbol, client_id)
            if ended is None:  # accepted, not carried out yet: how it stands now
                ended = c.get_order(symbol, client_id)
            return self._accepted(ended, client_id)
        except OrderNotFound:
            return OrderUnknown(self.venue, client_id, c.request_expiry_s)

    def _quote(self, symbol: str) -> Any:
        if self.feed is not None and self._fresh(symbol):
            quote = self.feed.book.get(symbol)
            if quote is not None and quote.mark is not None and quote.bid is not None and quote.ask is not None:
                return quote
        return self._client.quote(symbol)  # the feed is stale, down or incomplete: REST

    def _fresh(self, symbol: str) -> bool:
        """Both the touch and the mark arrived within the stale bound: a mark stream that keeps ticking must not
        make an old bid/ask look current (the streams are separate on both venues)."""
        assert self.feed is not None
        ages = (self.feed.touch_age(symbol), self.feed.mark_age(symbol))
        return all(age is not None and age <= self._stale_after_s for age in ages)

    def _feed_state(self) -> FeedState:
        if self.feed is None:
            return FeedState(self.venue, False, {}, 0)
        symbols = self.feed.symbols
        return FeedState(
            self.venue,
            self.feed.connected.is_set(),
            {s: self.feed.age(s) for s in symbols},
            self.feed.connections,
            self.feed.book.message_count,
        )

    def _accepted(self, result: OrderResult, client_id: str | None = None) -> OrderAccepted:
        fills: tuple[Any, ...] = result.fills or ()
        if result.filled_quantity > 0 and not fills:
            try:
                fills = tuple(self._client.fills(result.symbol, result.venue_order_id))
            except VenueError as exc:  # the fills can be fetched again later; the order's totals stand
                log.warning("%s: fills of %s not read: %s", self.venue, result.client_id, exc)
        fee = result.fee
        if fee is None and fills:
            fee = sum((f.fee for f in fills), Decimal(0))
        return OrderAccepted(
            self.venue,
            client_id or result.client_id or "",
            result.venue_order_id,
            result.status,
            result.quantity,
            result.filled_quantity,
            result.average_price,
            fee,
            fills,
            created_at=self._on_our_clock(result.created_at),
        )

    def _on_our_clock(self, venue_time: datetime | None) -> datetime | None:
        """A venue timestamp moved onto our clock, so the desk compares it with our rows' times on one clock."""
        if venue_time is None:
            return None
        return venue_time - timedelta(milliseconds=self._client.clock_offset_ms)

    def _place(self, m: PlaceOrder) -> OrderAccepted | OrderRejected | OrderInFlight:
        """Prepare the order, wait at its gate for the other leg's (an open's legs), send it; report its timing."""
        c = self._client
        request = OrderRequest(
            m.client_id,
            m.symbol,
            m.side,
            m.quantity,
            m.order_type,
            m.price,
            m.time_in_force,
            m.reduce_only,
            created_at=m.created_at,
        )
        prepared: PreparedOrder | None = None
        try:
            prepared = c.prepare_order(request)
            with legs_together(m.gate):  # the order's bytes wait for the other leg's; the last leg writes both
                result = c.send_order(prepared)
        except OrderOutcomeUnknown as exc:
            return OrderInFlight(self.venue, m.client_id, str(exc))
        except VenueError as exc:
            # Definitive: refused, or known not placed (rate limit, maintenance, a lost reply the client looked up
            # and did not find): a later attempt is a new order, decided by the caller's retry rules.
            return OrderRejected(self.venue, m.client_id, _code(exc), exc.venue_message)
        except ValueError as exc:  # refused locally before sending (client id form, rules)
            return OrderRejected(self.venue, m.client_id, "local", str(exc))
        finally:
            if m.gate is not None:  # refused before sending, or sent: the other leg must not wait for this one
                m.gate.abandon()
            if prepared is not None:
                self._timings.order_sent(self.venue, m.client_id, wire_timing(prepared.marks))
        return self._accepted(result, m.client_id)


def _code(exc: VenueError) -> str | None:
    return None if exc.code is None else str(exc.code)
