"""Hibachi REST client (requests): trade host and data host, signed writes, nonces, typed errors, Decimals.

An order goes in two steps, `prepare_order` (checked, signed, HTTP request prepared) and `send_order`, so
that it can be armed and then fired (core/gate.py). A place that times out is never re-sent: once its nonce
has fallen outside the server's window (the venue refuses it after that) the order is looked up by that nonce
(by client id when the nonce is not known), so the answer is either the order or "it never existed". A place
refused *because* of its nonce (outside the window, or reused) was never accepted: the clock offset is measured
again and the order re-signed with a fresh nonce and sent once more (same clientId). Reads carry no nonce, so
only places can meet that refusal. Fills are never assumed: an order's filled quantity, price and fee come from
the trade journal (and, for an order that ended other than filled, from order history), or from the account
stream's order and trade events when it is trusted and tells in time (exchanges/account_stream.py).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal
from typing import Any, Literal

from core.clock import Clock, SystemClock
from core.domain import Venue
from exchanges.account_book import OrderView
from exchanges.account_stream import AccountStream, StreamTimings
from exchanges.ambiguity import resolve_lost_reply
from exchanges.base import (
    Account,
    FeeRates,
    Fill,
    FundingPayment,
    Market,
    OrderRequest,
    OrderResult,
    OrderStatus,
    OrderType,
    Position,
    PreparedOrder,
    Quote,
    WireMark,
)
from exchanges.base import TimeInForce as Tif
from exchanges.clocksync import ClockResync
from exchanges.errors import (
    InvalidOrder,
    MalformedResponse,
    OrderNotFound,
    RateLimited,
    VenueError,
    VenueUnavailable,
)
from exchanges.hibachi import parse
from exchanges.hibachi.account_events import HibachiAccountDialect
from exchanges.hibachi.nonce import NonceSource
from exchanges.hibachi.signing import Contract, Signer, cancel_payload, order_payload, quantity_is_exact
from exchanges.http import PreparedRequest, RestTransport
from exchanges.wire import plain

log = logging.getLogger(__name__)
VENUE = "hibachi"
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9-]{1,32}$")
TRADES_PAGE = 100
MAX_TRADE_PAGES = 10
# Spec §4: nonces must lie within ±15 s of server time. A constructor argument so tests can shorten it.
NONCE_WINDOW_S = 15.0
# How often the clock offset is measured again unprompted, so drift is caught before it causes refusals.
RESYNC_EVERY_S = 300.0
# How long an accepted order waits for its outcome on the account stream before it is read back over REST:
# a few round trips, since the venue sends the events before its reply to the order.
STREAM_WAIT_S = 0.5
# How many orders' nonces are kept for lookups (the oldest go first): far more than are ever in flight.
NONCES_KEPT = 4096
# The venue's clock comes in whole ms: what the measured offset may be off by, besides half the round trip.
_SERVER_TIME_RESOLUTION_US = 1000


def is_nonce_refusal(error: VenueError) -> bool:
    """True when Hibachi refused a request for its nonce: outside the server's window, or already used.

    UNCERTAIN (spec §4): Hibachi publishes no code for a bad nonce (4 is any invalid input) nor its wording,
    so any 4xx reply whose message names the nonce counts (our nonces are always well formed, so a complaint
    about one is a clock or reuse problem). A lost reply (no reply at all) is never this: it may have been
    accepted.
    """
    if isinstance(error, VenueUnavailable | RateLimited) or error.http_status is None:
        return False
    return 400 <= error.http_status < 500 and "nonce" in error.venue_message.lower()


@dataclass(eq=False, kw_only=True)
class HibachiOrder(PreparedOrder):
    """A Hibachi order ready to send: its signed request, and when its nonce leaves the venue's window on our
    monotonic clock (how long a lost reply must be waited out)."""

    http: PreparedRequest
    expires_at: float


class HibachiClient:
    """The PerpExchange implementation for Hibachi perps."""

    venue = Venue.HIBACHI
    leverage_scope: Literal["account", "market"] = "market"  # initialMarginRate per symbol (spec §6)
    # orderFlags takes a single value (spec §3): a reduce-only order cannot also be IOC or post-only.
    combines_reduce_only_with_tif = False

    def __init__(
        self,
        api_url: str,
        data_api_url: str,
        api_key: str | None = None,
        account_id: int | None = None,
        signer: Signer | None = None,
        *,
        clock: Clock | None = None,
        nonce_window_s: float = NONCE_WINDOW_S,
        info_ttl_s: float = 60.0,
        connect_timeout_s: float = 3.05,
        read_timeout_s: float = 10.0,
        requests_per_s: float = 10.0,  # no published limits; CCXT paces one call per 100 ms
        get_retries: int = 3,
        backoff_s: float = 0.25,
        settle_polls: int = 5,
        settle_interval_s: float = 0.2,
        resync_every_s: float = RESYNC_EVERY_S,
        account_ws_url: str | None = None,
        stream_wait_s: float = STREAM_WAIT_S,
        stream_timings: StreamTimings | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.data_api_url = data_api_url.rstrip("/")
        self._api_key = api_key
        self._account_id = account_id
        self._signer = signer
        self._clock = clock or SystemClock()
        self.nonces = NonceSource(self._clock)
        self._nonce_window_s = nonce_window_s
        self._info_ttl_s = info_ttl_s
        self._info: parse.ExchangeInfo | None = None
        self._info_at = 0.0
        self._settle_polls = settle_polls
        self._settle_interval_s = settle_interval_s
        # The nonce last signed for each client id: it identifies the order (spec §3-4) where the venue does not
        # promise to keep client ids. Bounded: only lookups soon after sending need it.
        self._order_nonces: OrderedDict[str, int] = OrderedDict()
        self._order_nonces_lock = threading.Lock()
        # Monotonic, so a wall-clock step can neither postpone nor hurry it. The actor syncs at start.
        self._resync = ClockResync(VENUE, self._clock, resync_every_s, lambda retry: self._measure_offset(retry=retry))
        self._http = RestTransport(
            VENUE, self._clock, parse.parse_error, connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s, requests_per_s=requests_per_s, get_retries=get_retries, backoff_s=backoff_s,
        )  # fmt: skip
        # Our order events, so an accepted order needs no read-back (None: no URL or no key; REST only).
        self._stream_wait_s = stream_wait_s
        self.account_stream: AccountStream | None = None
        if account_ws_url and api_key and account_id is not None:
            dialect = HibachiAccountDialect(account_ws_url, api_key, account_id, self._clock)
            self.account_stream = AccountStream(dialect, self._clock, stream_timings).start()
        self.stream_settled = 0  # orders whose outcome came from the stream (the rest went to REST)

    @property
    def request_expiry_s(self) -> float:
        """After this long a request of ours can no longer be accepted (its nonce left the server's window)."""
        return self._nonce_window_s

    # ---- transport --------------------------------------------------------------------------------------

    @property
    def transport(self) -> RestTransport:
        """The HTTP edge (`transport.recording(marks)` stamps the requests sent within a block)."""
        return self._http

    def _credentials(self, what: str) -> tuple[str, int]:
        if not self._api_key or self._account_id is None:
            raise VenueError(VENUE, f"{what} needs hibachi.api_key and hibachi.account_id")
        return self._api_key, self._account_id

    def _data_get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        return self._http.request("GET", self.data_api_url + path, params=query, retry=True)[1]

    def _trade_get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        api_key, account_id = self._credentials(f"GET {path}")
        self._resync.before_request(write=False)
        query = {"accountId": str(account_id)} | {k: str(v) for k, v in (params or {}).items() if v is not None}
        return self._http.request(
            "GET", self.api_url + path, params=query, headers=lambda: {"Authorization": api_key}, retry=True
        )[1]

    def _trade_write(self, method: str, path: str, body: dict[str, Any]) -> Any:
        """A write: never retried here (the caller decides, knowing what a repeat would mean)."""
        return self._http.send(self._prepare_write(method, path, body))[1]

    def _prepare_write(self, method: str, path: str, body: dict[str, Any]) -> PreparedRequest:
        api_key, account_id = self._credentials(f"{method} {path}")
        data = json.dumps({"accountId": account_id} | body, separators=(",", ":"))
        return self._http.prepare(method, self.api_url + path, data=data, headers=lambda: {"Authorization": api_key})

    def _sign(self, payload: bytes) -> str:
        if self._signer is None:
            raise VenueError(VENUE, "signed calls need hibachi.key_type with its hmac_secret or private_key")
        return self._signer.sign(payload)

    # ---- public data ------------------------------------------------------------------------------------

    def server_time_ms(self) -> int:
        """Hibachi's clock (GET /exchange/utc-timestamp)."""
        return self._server_time_ms(retry=True)

    def _server_time_ms(self, *, retry: bool) -> int:
        url = self.data_api_url + "/exchange/utc-timestamp"
        return parse.parse_server_time_ms(self._http.request("GET", url, retry=retry)[1])

    @property
    def clock_offset_ms(self) -> int:
        """The venue's clock minus ours, as last measured."""
        return self.nonces.offset_us // 1000

    def sync_time(self) -> int:
        """Measure our offset from the venue's clock and use it for nonces; returns the offset in ms."""
        return self._measure_offset(retry=True)

    def _measure_offset(self, *, retry: bool) -> int:
        started = self._clock.monotonic()
        before = self.nonces.local_us()
        server_us = self._server_time_ms(retry=retry) * 1000
        after = self.nonces.local_us()
        round_trip_us = int((self._clock.monotonic() - started) * 1_000_000)
        self.nonces.set_offset_us(server_us - (before + after) // 2)
        # A floor left beyond the window by a wall-clock step comes back (never to a nonce already issued).
        if self.nonces.rewind(int(self._nonce_window_s * 1_000_000), round_trip_us + _SERVER_TIME_RESOLUTION_US):
            log.warning("hibachi nonces were ahead of the venue's window; back on its clock", extra={"venue": VENUE})
        self._resync.measured()
        return self.nonces.offset_us // 1000

    def exchange_info(self, *, max_age_s: float | None = None) -> parse.ExchangeInfo:
        """Status, contracts and fee rates; cached for `info_ttl_s` (or `max_age_s`)."""
        ttl = self._info_ttl_s if max_age_s is None else max_age_s
        if self._info is None or self._clock.monotonic() - self._info_at > ttl:
            self._info = parse.parse_exchange_info(self._data_get("/market/exchange-info"))
            self._info_at = self._clock.monotonic()
        return self._info

    def contract(self, symbol: str) -> Contract:
        """One contract's ids, decimals and rules (refreshing exchange-info once if it is unknown)."""
        info = self.exchange_info()
        if symbol not in info.contracts:
            info = self.exchange_info(max_age_s=0)
        if symbol not in info.contracts:
            raise InvalidOrder(VENUE, f"unknown contract {symbol!r}", code="UNKNOWN_SYMBOL")
        return info.contracts[symbol]

    def markets(self) -> list[Market]:
        """Every tradable (LIVE) contract with its rules (refreshing the cache)."""
        info = self.exchange_info(max_age_s=0)
        return [parse.contract_market(c) for c in info.contracts.values() if c.symbol in info.tradable]

    def market(self, symbol: str) -> Market:
        """One tradable contract's rules, cached: what a new position is planned from, so a contract that is
        not LIVE is refused (InvalidOrder). What is held there is still read, and closed, through contract()."""
        contract = self.contract(symbol)
        if symbol not in self.exchange_info().tradable:
            raise InvalidOrder(VENUE, f"contract {symbol!r} is not tradable (status is not LIVE)", code="NOT_LIVE")
        return parse.contract_market(contract)

    def quote(self, symbol: str) -> Quote:
        """Bid, ask, mark and funding estimate from GET /market/data/prices."""
        bid, ask, mark, rate, next_funding = parse.parse_prices(
            self._data_get("/market/data/prices", {"symbol": symbol})
        )
        return Quote(symbol, bid, ask, mark, rate, next_funding, self._clock.now(), "rest")

    # ---- account ----------------------------------------------------------------------------------------

    def _account_info(self) -> Any:
        return self._trade_get("/trade/account/info")

    def account(self) -> Account:
        """Equity, withdrawable collateral and margin requirements (portfolio margin, USDT)."""
        return parse.parse_account(self._account_info(), self.exchange_info().contracts)

    def positions(self) -> list[Position]:
        """Open positions."""
        return parse.parse_positions(self._account_info())

    def fee_rates(self) -> FeeRates:
        """The account's maker and taker rates (/trade/account/info), exchange-info's feeConfig where null."""
        return parse.parse_fee_rates(self._account_info(), self.exchange_info())

    def set_leverage(self, symbol: str, leverage: Decimal) -> Decimal:
        """Set the symbol's initialMarginRate to 1/leverage (rounded up: never more leverage than asked);
        returns the leverage that rate gives. Unsigned, as in the venue's documented example."""
        if leverage < 1:
            raise ValueError(f"leverage must be >= 1, got {leverage}")
        rate = (1 / leverage).quantize(Decimal("0.000001"), rounding=ROUND_CEILING)
        self._trade_write("POST", "/trade/account/leverage", {"symbol": symbol, "initialMarginRate": plain(rate)})
        return (1 / rate).quantize(Decimal("0.0001"), rounding=ROUND_DOWN)

    # ---- orders -----------------------------------------------------------------------------------------

    @staticmethod
    def _order_flags(request: OrderRequest) -> list[str]:
        flags = ["REDUCE_ONLY"] if request.reduce_only else []
        if request.order_type is OrderType.LIMIT and request.time_in_force is Tif.IOC:
            flags.append("IOC")
        elif request.order_type is OrderType.LIMIT and request.time_in_force is Tif.POST_ONLY:
            flags.append("POST_ONLY")
        return flags

    @staticmethod
    def _order_problems(request: OrderRequest, contract: Contract, flags: list[str]) -> list[str]:
        problems = []
        if request.quantity % contract.step_size or not quantity_is_exact(request.quantity, contract):
            problems.append(f"quantity {request.quantity} is not a multiple of {contract.step_size}")
        if request.quantity < contract.min_order_size:
            problems.append(f"quantity {request.quantity} is below the minimum {contract.min_order_size}")
        if request.price is not None:
            if request.price % contract.tick_size:
                problems.append(f"price {request.price} is not a multiple of {contract.tick_size}")
            if request.price * request.quantity < contract.min_notional:
                problems.append(f"notional is below the minimum {contract.min_notional}")
        if len(flags) > 1:
            problems.append(f"Hibachi takes one order flag, not {' + '.join(flags)}")
        return problems

    def order_body(self, request: OrderRequest, nonce: int) -> dict[str, Any]:
        """The POST /trade/order body, signed. Refuses (InvalidOrder, nothing sent) what the venue would."""
        if not CLIENT_ID_RE.match(request.client_id):
            raise ValueError(f"Hibachi clientId must be 1-32 of [A-Za-z0-9-], got {request.client_id!r}")
        contract = self.contract(request.symbol)
        info = self.exchange_info()
        flags = self._order_flags(request)
        problems = self._order_problems(request, contract, flags)
        if problems:
            raise InvalidOrder(VENUE, "; ".join(problems), code="LOCAL_CHECK")
        fee_cap = info.max_fee_rate
        payload = order_payload(nonce, contract, request.quantity, request.side, request.price, fee_cap)
        body: dict[str, Any] = {
            "symbol": request.symbol,
            "nonce": nonce,
            "orderType": "MARKET" if request.order_type is OrderType.MARKET else "LIMIT",
            "side": parse.SIDE_TO_WIRE[request.side],
            "quantity": plain(request.quantity),
            "maxFeesPercent": plain(fee_cap),
            "clientId": request.client_id,
        }
        if request.price is not None:
            body["price"] = plain(request.price)
        if flags:
            body["orderFlags"] = flags[0]
        body["signature"] = self._sign(payload)
        return body

    def prepare_order(self, request: OrderRequest) -> HibachiOrder:
        """Check and sign an order and prepare its request; nothing is sent (exchange-info may be read: refused
        during maintenance)."""
        marks: list[WireMark] = []
        with self._http.recording(marks):
            info = self.exchange_info()
            if info.status != parse.NORMAL:
                info = self.exchange_info(max_age_s=0)  # maintenance may have just ended
                if info.status != parse.NORMAL:
                    raise VenueUnavailable(VENUE, f"exchange is in {info.status}: {info.maintenance_note or ''}"
                                           .strip(), code=info.status)  # fmt: skip
            self._resync.before_request(write=True)
            http, expires_at = self._prepare_place(request)
        return HibachiOrder(request, marks, http=http, expires_at=expires_at)

    def _prepare_place(self, request: OrderRequest) -> tuple[PreparedRequest, float]:
        """The order's request with a fresh nonce, and when the venue stops accepting that nonce."""
        nonce = self.nonces.next()
        self._remember_nonce(request.client_id, nonce)
        # On our monotonic clock: a wall step cannot move it.
        expires_at = self._clock.monotonic() + self._nonce_window_s + max(0, -self.nonces.age_s(nonce))
        return self._prepare_write("POST", "/trade/order", self.order_body(request, nonce)), expires_at

    def send_order(self, prepared: PreparedOrder) -> OrderResult:
        """Send a prepared order, then read back what became of it. A lost reply is resolved by lookup, never
        re-sent; a refusal for its nonce is signed again with a fresh one and sent once more."""
        if not isinstance(prepared, HibachiOrder):
            raise TypeError(f"not a Hibachi order: {type(prepared).__name__}")
        request, http, expires_at = prepared.request, prepared.http, prepared.expires_at
        # Taken before sending: events of this order heard on a later subscription may have gaps.
        epoch = self.account_stream.epoch if self.account_stream is not None else None
        with self._http.recording(prepared.marks):
            for attempt in range(2):
                if attempt:
                    http, expires_at = self._prepare_place(request)
                try:
                    order_id = parse.parse_placed_order_id(self._http.send(http)[1])
                except VenueUnavailable as exc:  # timeout, 5xx, dropped link, garbage: the order may exist
                    return self._resolve_ambiguous(request, expires_at, exc)
                except VenueError as exc:
                    if attempt or not is_nonce_refusal(exc):
                        raise
                    self._resync.after_refusal(exc)
                    # Refused unread, so nothing was placed: the same order (same clientId) goes once more,
                    # signed with a fresh nonce on the corrected clock. A second refusal is raised.
                    continue
                return self._settle(request, order_id, epoch)
        raise AssertionError("unreachable")  # pragma: no cover

    def place_order(self, request: OrderRequest) -> OrderResult:
        """Prepare and send an order at once."""
        return self.send_order(self.prepare_order(request))

    def _settle(self, request: OrderRequest, order_id: str, epoch: int | None = None) -> OrderResult:
        """What became of an accepted order: told by the account stream when it is trusted and tells in time,
        else read back, market and IOC orders polled briefly until they finish."""
        heard = self._from_stream(request, order_id, epoch)
        if heard is not None:
            self.stream_settled += 1
            return heard
        result: OrderResult | None = None
        for poll in range(self._settle_polls):
            try:
                result = self.get_order(request.symbol, request.client_id)
            except VenueError as exc:
                log.warning("hibachi order %s (%s) accepted; reading it back failed: %s", request.client_id,
                            order_id, exc)  # fmt: skip
            if result is not None and (result.status.is_final or not request.immediate):
                return result
            if poll < self._settle_polls - 1:
                self._clock.sleep(self._settle_interval_s)
        # Accepted, but its outcome is not visible yet: say so rather than assume a fill.
        return result or OrderResult(
            order_id, request.client_id, request.symbol, request.side, OrderStatus.NEW, request.quantity,
            Decimal(0), None,
        )  # fmt: skip

    def _from_stream(self, request: OrderRequest, order_id: str, epoch: int | None) -> OrderResult | None:
        """The order as `get_order` would give it, from its stream events: market and IOC orders once final
        with all their fills, others once heard with the fills heard so far. None: not trusted, or not in time."""
        stream = self.account_stream
        if stream is None or epoch is None:
            return None

        def told(view: OrderView) -> bool:
            if _ended_not_filled(view.status):
                return True  # no use waiting: only REST can say how much it filled
            return view.settled if request.immediate else view.status is not None and view.fills_complete

        view = stream.wait_for(order_id, told, self._stream_wait_s, epoch)
        if view is None or view.status is None or view.quantity is None or _ended_not_filled(view.status):
            log.info("hibachi order %s: not told by the account stream; reading REST", request.client_id)
            return None
        result = OrderResult(
            order_id, view.client_id, view.symbol or request.symbol, view.side or request.side, view.status,
            view.quantity, view.filled_quantity, None, created_at=view.created_at,
        )  # fmt: skip
        if view.filled_quantity == 0:
            return result
        # Newest first, as the trade journal lists them; totals computed as get_order computes them.
        fills = tuple(reversed(view.fills))
        filled = sum((f.quantity for f in fills), Decimal(0))
        return dataclasses.replace(
            result,
            filled_quantity=filled,
            average_price=sum((f.price * f.quantity for f in fills), Decimal(0)) / filled,
            fee=sum((f.fee for f in fills), Decimal(0)),
            fills=fills,
        )

    def _resolve_ambiguous(self, request: OrderRequest, expires_at: float, cause: VenueError) -> OrderResult:
        # Once its nonce has left the server's window (`expires_at`, monotonic) Hibachi can no longer accept it;
        # get_order then looks it up by that nonce, which identifies it (its client id may not be kept).
        wait_s = expires_at - self._clock.monotonic()
        return resolve_lost_reply(VENUE, request, cause, wait_s, self._clock, self.get_order, self.clock_offset_ms)

    def get_order(self, symbol: str, client_id: str) -> OrderResult:
        """An order by client id, open or finished, with filled quantity, average price and fee from its trades.
        An order that ended other than filled takes its filled quantity and average price from order history."""
        result = self._lookup(client_id)
        if result.symbol != symbol:
            raise OrderNotFound(VENUE, f"order {client_id} is on {result.symbol}, not {symbol}")
        ended: parse.HistoryFill | None = None
        if _ended_not_filled(result.status):
            ended = self._history_fill(result)
            result = dataclasses.replace(result, filled_quantity=ended.quantity)
        if result.filled_quantity == 0:
            return result
        fills = self._order_fills(symbol, result.venue_order_id, result.filled_quantity)
        filled = sum((f.quantity for f in fills), Decimal(0))
        if filled < result.filled_quantity:
            # The order says more filled than the journal shows yet: report nothing rather than guess.
            raise VenueUnavailable(
                VENUE, f"order {client_id}: {result.filled_quantity} filled but only {filled} in the trade journal yet"
            )
        if ended is not None and filled != ended.quantity:
            raise MalformedResponse(VENUE, f"order {client_id}: history says {ended.quantity} filled, journal {filled}")
        average = sum((f.price * f.quantity for f in fills), Decimal(0)) / filled
        return dataclasses.replace(
            result,
            filled_quantity=filled,
            average_price=ended.average_price if ended is not None and ended.average_price is not None else average,
            fee=sum((f.fee for f in fills), Decimal(0)),
            fills=tuple(fills),
        )

    def _remember_nonce(self, client_id: str, nonce: int) -> None:
        with self._order_nonces_lock:
            self._order_nonces[client_id] = nonce  # a re-signed order: its last nonce is the one that may exist
            self._order_nonces.move_to_end(client_id)
            while len(self._order_nonces) > NONCES_KEPT:
                self._order_nonces.popitem(last=False)

    def _lookup(self, client_id: str) -> OrderResult:
        """GET /trade/order by the nonce we signed for `client_id` when we know it, by clientId otherwise. An
        order found under our nonce but carrying another client id is not ours: OrderNotFound."""
        with self._order_nonces_lock:
            nonce = self._order_nonces.get(client_id)
        query = {"clientId": client_id} if nonce is None else {"nonce": nonce}
        result = parse.parse_order(self._trade_get("/trade/order", query))
        if result.client_id is not None and result.client_id != client_id:
            raise OrderNotFound(VENUE, f"order {client_id}: the venue's order for {query} is {result.client_id}'s")
        return result

    def _history_fill(self, order: OrderResult) -> parse.HistoryFill:
        """A finished order's fill as order history reports it. `cursorOrderId` is exclusive and history lists
        newest first, so the page that starts just above the order's id starts with it."""
        data = self._trade_get("/trade/orders/history", {"cursorOrderId": int(order.venue_order_id) + 1})
        ended = parse.history_fill(data, order.venue_order_id)
        if ended is None:
            # It ended, but history does not show it yet: report nothing rather than guess from the order.
            raise VenueUnavailable(
                VENUE, f"order {order.client_id or order.venue_order_id} is {order.status.value} but not in order "
                "history yet"
            )  # fmt: skip
        return ended

    def _order_fills(self, symbol: str, order_id: str, expected: Decimal) -> list[Fill]:
        # Our fills are the newest entries of a page of up to 100: only entries naming the order are parsed
        # (parsing a whole page took ~2 ms between the venue's last reply and OPEN committed).
        found: list[Fill] = []
        for items in self._trade_pages(symbol):
            candidates = (parse.parse_trade(item) for item in items if parse.may_belong_to(item, order_id))
            found.extend(f for f in candidates if f.venue_order_id == order_id and f.symbol == symbol)
            if sum((f.quantity for f in found), Decimal(0)) >= expected:
                break
        return found

    def _trade_pages(self, symbol: str) -> Iterator[list[Any]]:
        """Pages of raw trade-journal entries for one contract, newest first (paging backwards by journal id)."""
        contract_id = self.contract(symbol).id
        cursor: str | None = None
        for _ in range(MAX_TRADE_PAGES):
            data = self._trade_get(
                "/trade/account/trades", {"contractId": contract_id, "limit": TRADES_PAGE, "maxJournalId": cursor}
            )
            items = parse.trade_items(data)
            yield items
            if len(items) < TRADES_PAGE:
                return
            cursor = str(min(parse.trade_journal_id(item) for item in items) - 1)

    def open_orders(self) -> list[OrderResult]:
        """Every pending order of the account (GET /trade/orders, a bare array)."""
        data = self._trade_get("/trade/orders")
        if not isinstance(data, list):
            raise MalformedResponse(VENUE, "orders: expected an array")
        return [parse.parse_order(o) for o in data]

    def cancel_order(self, symbol: str, client_id: str) -> OrderResult | None:
        """Cancel by client id: looked up, then cancelled by orderId (the id the signature covers, spec §2).
        None: accepted, not yet carried out. A finished order comes back as it ended."""
        order = self.get_order(symbol, client_id)
        if order.status.is_final:
            return order
        signature = self._sign(cancel_payload(int(order.venue_order_id)))
        try:
            self._trade_write("DELETE", "/trade/order", {"orderId": order.venue_order_id, "signature": signature})
        except OrderNotFound:
            return self.get_order(symbol, client_id)  # it finished meanwhile
        return None

    def fills(self, symbol: str, venue_order_id: str | None = None) -> list[Fill]:
        """Recent own fills of a contract (or of one order), newest first."""
        if venue_order_id is not None:
            return self._order_fills(symbol, venue_order_id, Decimal("Infinity"))
        first = next(iter(self._trade_pages(symbol)), [])
        return [f for f in (parse.parse_trade(item) for item in first) if f.symbol == symbol]

    def funding_payments(self, symbol: str) -> list[FundingPayment]:
        """Recent funding settlements of a contract."""
        data = self._trade_get(
            "/trade/account/settlements_history", {"contractId": self.contract(symbol).id, "limit": 100}
        )
        return [p for p in parse.parse_settlements(data) if p.symbol == symbol]

    def close(self) -> None:
        """Stop the account stream and close the HTTP session."""
        if self.account_stream is not None:
            self.account_stream.stop()
        self._http.close()


def _ended_not_filled(status: OrderStatus | None) -> bool:
    """Ended other than filled: the order's availableQuantity (on REST and in its stream events alike) is then
    undefined (spec §3), so how much filled is known only from order history, as get_order reads it."""
    return status is not None and status.is_final and status is not OrderStatus.FILLED
