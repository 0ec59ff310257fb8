"""Backpack REST client (requests): signed calls, pacing, GET-only retries, typed errors, Decimal results.

An order goes in two steps, `prepare_order` (checked, signed, HTTP request prepared) and `send_order`, so
that it can be armed and then fired (core/gate.py). A place that times out is never re-sent: once its signed
window has passed (Backpack refuses the request after that) the order is looked up by client id, so the
answer is either the order or "it never existed".
A request refused *because* its timestamp lay outside the window was never accepted: the clock offset is
measured again and that one request re-signed and re-sent once (reads and writes alike).
A filled order's fills come from the private order stream when it is trusted and tells in time
(exchanges/account_stream.py), else from the fill history.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from core.clock import Clock, SystemClock
from core.domain import Venue
from exchanges.account_book import OrderView
from exchanges.account_stream import AccountStream, StreamTimings
from exchanges.ambiguity import resolve_lost_reply
from exchanges.backpack import parse
from exchanges.backpack.account_events import BackpackAccountDialect
from exchanges.backpack.signing import BackpackSigner, render_value
from exchanges.base import (
    Account,
    FeeRates,
    Fill,
    FundingPayment,
    Market,
    OrderRequest,
    OrderResult,
    OrderType,
    Position,
    PreparedOrder,
    Quote,
    WireMark,
)
from exchanges.base import TimeInForce as Tif
from exchanges.clocksync import ClockResync
from exchanges.errors import MalformedResponse, OrderNotFound, RateLimited, VenueError, VenueUnavailable
from exchanges.http import HeaderSource, PreparedRequest, RestTransport
from exchanges.wire import dec, plain

log = logging.getLogger(__name__)
VENUE = "backpack"
HISTORY_LIMIT = 1000
# How often the clock offset is measured again unprompted, so drift is caught before it causes refusals.
RESYNC_EVERY_S = 300.0
# How long a placed order waits for its fills on the account stream before they are read over REST: a few
# round trips, since the venue sends the events before its reply to the order.
STREAM_WAIT_S = 0.5
_CLOCK_WORDS = re.compile(r"expired|timestamp", re.IGNORECASE)


def is_clock_refusal(error: VenueError) -> bool:
    """True when Backpack refused a request because its timestamp lay outside the signed window.

    UNCERTAIN (spec §4): only HTTP 401 "Request has expired" was observed (2024); its JSON code today is not
    known, and whether (and how) a timestamp in the future is refused is undocumented. So the wording decides,
    not the code: any 4xx reply whose message says "expired" or names the timestamp. A refused key or
    signature is not this, and neither is a lost reply (no reply at all: it may have been accepted).
    """
    if isinstance(error, VenueUnavailable | RateLimited) or error.http_status is None:
        return False
    return 400 <= error.http_status < 500 and _CLOCK_WORDS.search(error.venue_message) is not None


@dataclass(eq=False, kw_only=True)
class BackpackOrder(PreparedOrder):
    """A Backpack order ready to send: its signed request and when it was signed (monotonic), from which
    its window, and so how long a lost reply must be waited out, is counted."""

    http: PreparedRequest
    signed_at: float


class BackpackClient:
    """The PerpExchange implementation for Backpack perps."""

    venue = Venue.BACKPACK
    leverage_scope: Literal["account", "market"] = "account"  # leverageLimit is account-wide (spec §3.3)

    def __init__(
        self,
        rest_url: str,
        api_key: str | None = None,
        api_secret: str | None = None,
        *,
        window_ms: int = 5000,
        clock: Clock | None = None,
        connect_timeout_s: float = 3.05,
        read_timeout_s: float = 10.0,
        requests_per_s: float = 10.0,
        get_retries: int = 3,
        backoff_s: float = 0.25,
        resync_every_s: float = RESYNC_EVERY_S,
        account_ws_url: str | None = None,
        stream_wait_s: float = STREAM_WAIT_S,
        stream_timings: StreamTimings | None = None,
    ) -> None:
        self.base_url = rest_url.rstrip("/")
        self._clock = clock or SystemClock()
        self._signer = BackpackSigner(api_key, api_secret, window_ms) if api_key and api_secret else None
        self._http = RestTransport(
            VENUE, self._clock, parse.parse_error, connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s, requests_per_s=requests_per_s, get_retries=get_retries, backoff_s=backoff_s,
        )  # fmt: skip
        self._offset_ms = 0
        # Monotonic, so a wall-clock step can neither postpone nor hurry it. The actor syncs at start.
        self._resync = ClockResync(VENUE, self._clock, resync_every_s, lambda retry: self._measure_offset(retry=retry))
        self._markets: dict[str, Market] = {}
        # Our order events, so a placed order's fills need no REST read (None: no URL or no key; REST only).
        self._stream_wait_s = stream_wait_s
        self.account_stream: AccountStream | None = None
        if account_ws_url and self._signer is not None:
            dialect = BackpackAccountDialect(account_ws_url, self._signer, self._now_ms)
            self.account_stream = AccountStream(dialect, self._clock, stream_timings).start()
        self.stream_settled = 0  # orders whose outcome came from the stream (the rest went to REST)

    # ---- transport --------------------------------------------------------------------------------------

    @property
    def transport(self) -> RestTransport:
        """The HTTP edge (`transport.recording(marks)` stamps the requests sent within a block)."""
        return self._http

    @property
    def request_expiry_s(self) -> float:
        """After this long a request of ours can no longer be accepted (its signed window has passed)."""
        return (self._signer.window_ms if self._signer else 5000) / 1000

    def _now_ms(self) -> int:
        return int(self._clock.now().timestamp() * 1000) + self._offset_ms

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        instruction: str | None = None,
        retry: bool = False,
    ) -> tuple[int, Any]:
        """Send one request (retrying if `retry`); returns (status, parsed JSON, text, or None)."""
        query = {k: render_value(v) for k, v in (params or {}).items() if v is not None}
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        url = self.base_url + path
        if instruction is None:
            return self._http.request(method, url, params=query, data=data, retry=retry)
        headers = self._signed_headers(instruction, body if body is not None else query)
        self._resync.before_request(write=method != "GET")
        try:
            return self._http.request(method, url, params=query, data=data, headers=headers, retry=retry)
        except VenueError as exc:
            if not is_clock_refusal(exc):
                raise
            self._resync.after_refusal(exc)
        # Refused unread, so nothing was done: the same request (same clientId), re-signed on the corrected
        # clock, goes once more. A second refusal is raised.
        return self._http.request(method, url, params=query, data=data, headers=headers, retry=retry)

    def _require_signer(self, instruction: str) -> BackpackSigner:
        if self._signer is None:
            raise VenueError(VENUE, f"{instruction} needs backpack.api_key and backpack.api_secret")
        return self._signer

    def _signed_headers(
        self, instruction: str, signed: dict[str, Any], signed_at: list[float] | None = None
    ) -> HeaderSource:
        """A header source that signs afresh on every call (a retry carries a fresh timestamp), appending the
        monotonic time of each signing to `signed_at`."""
        signer = self._require_signer(instruction)

        def headers() -> dict[str, str]:
            if signed_at is not None:
                signed_at.append(self._clock.monotonic())
            return signer.headers(instruction, signed, self._now_ms())

        return headers

    def _get(self, path: str, params: dict[str, Any] | None = None, instruction: str | None = None) -> Any:
        return self._request("GET", path, params=params, instruction=instruction, retry=True)[1]

    # ---- public data ------------------------------------------------------------------------------------

    def server_time_ms(self) -> int:
        """Backpack's clock (GET /api/v1/time, plain text ms)."""
        return self._server_time_ms(retry=True)

    def _server_time_ms(self, *, retry: bool) -> int:
        value = self._request("GET", "/api/v1/time", retry=retry)[1]
        try:
            return int(str(value).strip())
        except ValueError:
            raise MalformedResponse(VENUE, "time: not an integer") from None

    @property
    def clock_offset_ms(self) -> int:
        """The venue's clock minus ours, as last measured."""
        return self._offset_ms

    def sync_time(self) -> int:
        """Measure our offset from the venue's clock and sign with corrected time; returns the offset in ms."""
        return self._measure_offset(retry=True)

    def _measure_offset(self, *, retry: bool) -> int:
        before = int(self._clock.now().timestamp() * 1000)
        server = self._server_time_ms(retry=retry)
        after = int(self._clock.now().timestamp() * 1000)
        self._offset_ms = server - (before + after) // 2
        self._resync.measured()
        return self._offset_ms

    def markets(self) -> list[Market]:
        """Every perp market with its rules (and refresh the cache)."""
        markets = parse.parse_markets(self._get("/api/v1/markets", {"marketType": "PERP"}))
        self._markets = {m.symbol: m for m in markets}
        return markets

    def market(self, symbol: str) -> Market:
        """One market's rules, cached."""
        if symbol not in self._markets:
            self._markets[symbol] = parse.parse_market(self._get("/api/v1/market", {"symbol": symbol}))
        return self._markets[symbol]

    def quote(self, symbol: str) -> Quote:
        """Mark and funding from markPrices, best bid/ask from depth."""
        mark, rate, next_funding = parse.parse_mark_price(self._get("/api/v1/markPrices", {"symbol": symbol}), symbol)
        bid, ask = parse.parse_depth_top(self._get("/api/v1/depth", {"symbol": symbol, "limit": 5}))
        return Quote(symbol, bid, ask, mark, rate, next_funding, self._clock.now(), "rest")

    # ---- account ----------------------------------------------------------------------------------------

    def account(self) -> Account:
        """Equity, free collateral and requirements from the collateral summary."""
        return parse.parse_collateral(self._get("/api/v1/capital/collateral", instruction="collateralQuery"))

    def leverage_limit(self) -> Decimal:
        """The account-wide leverage limit (GET /api/v1/account)."""
        data = self._get("/api/v1/account", instruction="accountQuery")
        if not isinstance(data, dict) or "leverageLimit" not in data:
            raise MalformedResponse(VENUE, "account: missing leverageLimit")
        return dec(VENUE, data["leverageLimit"], "leverageLimit")

    def fee_rates(self) -> FeeRates:
        """The account's futures maker and taker fee rates (GET /api/v1/account, in bps there)."""
        return parse.parse_fee_rates(self._get("/api/v1/account", instruction="accountQuery"))

    def positions(self) -> list[Position]:
        """Open positions (netted per symbol), each with its liquidation estimate.

        The all-symbol list carries no liquidation estimate ("0", spec §3.3), so each symbol it shows open is
        queried once more on its own (1 + open symbols requests); that newer reply is the one reported."""
        listed = parse.parse_positions(self._get("/api/v1/position", instruction="positionQuery"))
        return [p for symbol in dict.fromkeys(p.symbol for p in listed) for p in self._symbol_positions(symbol)]

    def _symbol_positions(self, symbol: str) -> list[Position]:
        """One symbol's position query (empty once it has closed since the list was read)."""
        try:
            data = self._get("/api/v1/position", {"symbol": symbol}, instruction="positionQuery")
        except OrderNotFound:  # UNCERTAIN (spec §3.3): how the venue answers a symbol without a position
            return []
        return [p for p in parse.parse_positions(data) if p.symbol == symbol]

    def set_leverage(self, symbol: str, leverage: Decimal) -> Decimal:
        """Set the account-wide leverageLimit (PATCH /api/v1/account); Backpack has no per-market leverage."""
        self._request("PATCH", "/api/v1/account", body={"leverageLimit": plain(leverage)}, instruction="accountUpdate")
        return leverage

    # ---- orders -----------------------------------------------------------------------------------------

    @staticmethod
    def order_body(request: OrderRequest) -> dict[str, Any]:
        """The orderExecute payload for a request (exactly the fields that are signed)."""
        if not (request.client_id.isascii() and request.client_id.isdigit()) or int(request.client_id) >= 2**32:
            raise ValueError(f"Backpack clientId must be a uint32, got {request.client_id!r}")
        body: dict[str, Any] = {
            "symbol": request.symbol,
            "side": parse.SIDE_TO_WIRE[request.side],
            "orderType": "Market" if request.order_type is OrderType.MARKET else "Limit",
            "quantity": plain(request.quantity),
            "clientId": int(request.client_id),
        }
        if request.order_type is OrderType.LIMIT and request.price is not None:  # OrderRequest checks limits have one
            body["price"] = plain(request.price)
            if request.time_in_force is Tif.POST_ONLY:
                body["postOnly"] = True
            elif request.time_in_force is Tif.IOC:
                body["timeInForce"] = "IOC"
        if request.reduce_only:
            body["reduceOnly"] = True
        return body

    def prepare_order(self, request: OrderRequest) -> BackpackOrder:
        """Check, sign and prepare an order's request; nothing is sent (a due clock resync may be)."""
        marks: list[WireMark] = []
        with self._http.recording(marks):
            body = self.order_body(request)
            self._require_signer("orderExecute")
            self._resync.before_request(write=True)
            http, signed_at = self._prepare_order_request(body)
        return BackpackOrder(request, marks, http=http, signed_at=signed_at)

    def _prepare_order_request(self, body: dict[str, Any]) -> tuple[PreparedRequest, float]:
        signed_at: list[float] = []
        headers = self._signed_headers("orderExecute", body, signed_at)
        data = json.dumps(body, separators=(",", ":"))
        return self._http.prepare("POST", self.base_url + "/api/v1/order", data=data, headers=headers), signed_at[-1]

    def send_order(self, prepared: PreparedOrder) -> OrderResult:
        """Send a prepared order, then learn its fills (from the account stream, else over REST). A timeout or
        unreadable reply is resolved by lookup, never by re-sending; a refusal for its timestamp is re-signed and
        sent once more."""
        if not isinstance(prepared, BackpackOrder):
            raise TypeError(f"not a Backpack order: {type(prepared).__name__}")
        # Taken before sending: events of this order heard on a later subscription may have gaps.
        epoch = self.account_stream.epoch if self.account_stream is not None else None
        with self._http.recording(prepared.marks):
            try:
                try:
                    _, data = self._http.send(prepared.http)
                except VenueError as exc:
                    if not is_clock_refusal(exc):
                        raise
                    self._resync.after_refusal(exc)
                    # Refused unread, so nothing was placed: the same order (same clientId), re-signed on the
                    # corrected clock, goes once more. A second refusal is raised.
                    http, prepared.signed_at = self._prepare_order_request(self.order_body(prepared.request))
                    _, data = self._http.send(http)
                result = parse.parse_order(data)
            except VenueUnavailable as exc:  # timeout, 5xx, dropped link, garbage: the order may exist
                return self._resolve_ambiguous(prepared.request, prepared.signed_at, exc)
            return self._with_fills(result, prepared.request.immediate, epoch)

    def place_order(self, request: OrderRequest) -> OrderResult:
        """Prepare and send an order at once."""
        return self.send_order(self.prepare_order(request))

    def _with_fills(self, result: OrderResult, immediate: bool = False, epoch: int | None = None) -> OrderResult:
        """A filled order with its fills and fee (the place reply carries neither): heard on the account stream
        when it is trusted and they come within `stream_wait_s`, else read over REST. Not read: the order as
        is, its fills can be read later."""
        if result.fills is not None:
            return result
        heard = self._from_stream(result, immediate, epoch)
        if heard is not None:
            self.stream_settled += 1
            return heard
        if result.filled_quantity == 0:
            return result
        try:
            fills = tuple(self.fills(result.symbol, result.venue_order_id))
        except VenueError as exc:
            log.warning("backpack: fills of order %s not read: %s", result.client_id, exc)
            return result
        return dataclasses.replace(result, fee=sum((f.fee for f in fills), Decimal(0)), fills=fills)

    def _from_stream(self, result: OrderResult, immediate: bool, epoch: int | None) -> OrderResult | None:
        """The placed order completed from its stream events, exactly as the REST path would give it; None when
        the stream is not trusted or did not tell all in time. A market or IOC order the reply left unfinished
        is waited for until final; any other order only for the fills its reply counts."""
        stream = self.account_stream
        finish = immediate and not result.status.is_final
        if stream is None or epoch is None or (result.filled_quantity == 0 and not finish):
            return None
        filled = result.filled_quantity

        def told(view: OrderView) -> bool:
            return view.settled if finish else view.fills_quantity >= filled

        view = stream.wait_for(result.venue_order_id, told, self._stream_wait_s, epoch)
        if view is None:
            log.info("backpack order %s: not told by the account stream; reading REST", result.client_id)
            return None
        if finish:
            filled = view.filled_quantity
            average = None
            if filled > 0:
                quote = view.filled_quote
                if quote is None:
                    quote = sum((f.price * f.quantity for f in view.fills), Decimal(0))
                average = quote / filled
            status = view.status or result.status  # settled, so never the fallback
            result = dataclasses.replace(result, status=status, filled_quantity=filled, average_price=average)
            if filled == 0:
                return result
        # Newest first, as the fill history lists them.
        fills = tuple(reversed(view.fills))
        return dataclasses.replace(result, fee=sum((f.fee for f in fills), Decimal(0)), fills=fills)

    def _resolve_ambiguous(self, request: OrderRequest, signed_at: float, cause: VenueError) -> OrderResult:
        # Past its signed window Backpack can no longer accept that request: the window is counted from the
        # last signing on the monotonic clock, so neither a re-send nor a wall-clock step can shorten the wait.
        window_s = (self._signer.window_ms if self._signer else 5000) / 1000
        wait_s = window_s - (self._clock.monotonic() - signed_at)
        return resolve_lost_reply(VENUE, request, cause, wait_s, self._clock, self.get_order, self.clock_offset_ms)

    def get_order(self, symbol: str, client_id: str) -> OrderResult:
        """An order by client id: resting orders from orderQuery, finished ones from order history."""
        try:
            data = self._get("/api/v1/order", {"symbol": symbol, "clientId": int(client_id)}, instruction="orderQuery")
            result = parse.parse_order(data)
        except OrderNotFound:
            history = self._get(
                "/wapi/v1/history/orders",
                {"symbol": symbol, "limit": HISTORY_LIMIT, "sortDirection": "Desc"},
                instruction="orderHistoryQueryAll",
            )
            found = parse.find_order_by_client_id(history, client_id)
            if found is None:
                raise OrderNotFound(VENUE, f"no order with clientId {client_id}", http_status=404) from None
            result = found
        if result.filled_quantity > 0:
            fills = tuple(self.fills(symbol, result.venue_order_id))
            result = dataclasses.replace(result, fee=sum((f.fee for f in fills), Decimal(0)), fills=fills)
        return result

    def cancel_order(self, symbol: str, client_id: str) -> OrderResult | None:
        """Cancel by client id; None when Backpack answered 202 (accepted, not yet carried out). An order that
        had already finished is returned as it ended; OrderNotFound only when there is no such order."""
        try:
            status, data = self._request(
                "DELETE",
                "/api/v1/order",
                body={"symbol": symbol, "clientId": int(client_id)},
                instruction="orderCancel",
            )
        except OrderNotFound:
            return self.get_order(symbol, client_id)  # nothing open to cancel: say how it ended
        if status == 202 or data is None:
            return None
        return parse.parse_order(data)

    def fills(self, symbol: str, venue_order_id: str | None = None) -> list[Fill]:
        """Recent own fills of a market (or of one order)."""
        params = {"symbol": symbol, "orderId": venue_order_id, "limit": HISTORY_LIMIT, "fillType": "User"}
        return parse.parse_fills(self._get("/wapi/v1/history/fills", params, instruction="fillHistoryQueryAll"))

    def funding_payments(self, symbol: str) -> list[FundingPayment]:
        """Recent funding settlements of a market."""
        params = {"symbol": symbol, "limit": HISTORY_LIMIT}
        return parse.parse_funding(self._get("/wapi/v1/history/funding", params, instruction="fundingHistoryQueryAll"))

    def close(self) -> None:
        """Stop the account stream and close the HTTP session."""
        if self.account_stream is not None:
            self.account_stream.stop()
        self._http.close()
