"""A Backpack exchange on loopback: the real paths, JSON shapes, status codes, error bodies and signatures.

Deliberately independent of `exchanges.backpack.signing` and `.parse`: a mistake shared by client and
simulator would otherwise pass both. Both are checked against the spec instead.

Standalone: `python -m exchanges.backpack.sim --port 0 [--seed N] [--collateral USDC]` prints one JSON line
with its URLs and the paper account's keys, then serves until killed.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import sys
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from core.clock import Clock, SystemClock
from core.domain import Side
from exchanges.base import OrderStatus, OrderType, TimeInForce
from exchanges.sim.admin import admin_handler
from exchanges.sim.engine import RejectKind, SimAccount, SimEngine, SimMarket, SimOrder, SimRejectError
from exchanges.sim.faults import InjectedHttpError
from exchanges.sim.http import NeverAnswerError, Request, Response, SimHttpServer
from exchanges.sim.price import PriceSource
from exchanges.sim.venue import SimVenue
from exchanges.sim.ws import SimWsServer

# Backpack publishes no fee table in our sources; these are typical VIP0 futures rates (configurable).
MAKER_FEE = Decimal("0.0002")
TAKER_FEE = Decimal("0.0005")
MAX_WINDOW_MS = 60000
# Builds the venue's engine from SimEngine's arguments (SimEngine itself, or a live-priced one).
EngineFactory = Callable[..., SimEngine]

DEFAULT_MARKETS = [
    SimMarket("BTC_USDC_PERP", "BTC", Decimal("0.1"), Decimal("0.00001"), Decimal("0.00001"),
              initial_margin_rate=Decimal("0.02"), maintenance_margin_rate=Decimal("0.0125")),
    SimMarket("ETH_USDC_PERP", "ETH", Decimal("0.01"), Decimal("0.0001"), Decimal("0.0001"),
              initial_margin_rate=Decimal("0.02"), maintenance_margin_rate=Decimal("0.0125")),
    SimMarket("SOL_USDC_PERP", "SOL", Decimal("0.01"), Decimal("0.01"), Decimal("0.01"),
              initial_margin_rate=Decimal("0.02"), maintenance_margin_rate=Decimal("0.0125"),
              level_size=Decimal(500)),
]  # fmt: skip

_STATUS = {
    OrderStatus.NEW: "New",
    OrderStatus.PARTIALLY_FILLED: "PartiallyFilled",
    OrderStatus.FILLED: "Filled",
    OrderStatus.CANCELLED: "Cancelled",
    OrderStatus.EXPIRED: "Expired",
    OrderStatus.REJECTED: "TriggerFailed",
}
_SIDE = {Side.LONG: "Bid", Side.SHORT: "Ask"}
_SIDE_IN = {"Bid": Side.LONG, "Ask": Side.SHORT}
_REJECT_CODES = {
    RejectKind.UNKNOWN_MARKET: (400, "INVALID_MARKET"),
    RejectKind.BAD_QUANTITY: (400, "INVALID_QUANTITY"),
    RejectKind.BAD_PRICE: (400, "INVALID_PRICE"),
    RejectKind.INSUFFICIENT_MARGIN: (400, "INSUFFICIENT_MARGIN"),
    RejectKind.REDUCE_ONLY: (400, "INVALID_ORDER"),
    RejectKind.DUPLICATE_CLIENT_ID: (400, "INVALID_CLIENT_REQUEST"),
    RejectKind.NOT_FOUND: (404, "RESOURCE_NOT_FOUND"),
    RejectKind.LEVERAGE: (400, "MAX_LEVERAGE_REACHED"),
}
_HTTP_ERROR_CODES = {429: "TOO_MANY_REQUESTS", 500: "SERVER_ERROR", 502: "SERVER_ERROR", 503: "MAINTENANCE",
                     504: "TIMEOUT"}  # fmt: skip

# Signed endpoints: (method, path) -> instruction name (spec §3, from [OA]).
INSTRUCTIONS = {
    ("POST", "/api/v1/order"): "orderExecute",
    ("GET", "/api/v1/order"): "orderQuery",
    ("DELETE", "/api/v1/order"): "orderCancel",
    ("GET", "/api/v1/orders"): "orderQueryAll",
    ("GET", "/api/v1/position"): "positionQuery",
    ("GET", "/api/v1/capital/collateral"): "collateralQuery",
    ("GET", "/api/v1/account"): "accountQuery",
    ("PATCH", "/api/v1/account"): "accountUpdate",
    ("GET", "/wapi/v1/history/orders"): "orderHistoryQueryAll",
    ("GET", "/wapi/v1/history/fills"): "fillHistoryQueryAll",
    ("GET", "/wapi/v1/history/funding"): "fundingHistoryQueryAll",
}


def _s(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")


def _error(status: int, code: str, message: str) -> Response:
    return Response(status, {"code": code, "message": message})


def _expected_message(instruction: str, params: Mapping[str, Any], timestamp: str, window: str) -> str:
    """The text the venue verifies (written from the spec, separately from the client's signer)."""

    def render(v: Any) -> str:
        if v is True:
            return "true"
        if v is False:
            return "false"
        return str(v)

    pairs = "&".join(f"{k}={render(params[k])}" for k in sorted(params))
    head = f"instruction={instruction}" + (f"&{pairs}" if pairs else "")
    return f"{head}&timestamp={timestamp}&window={window}"


class BackpackSim(SimVenue):
    """The simulated venue: REST and websocket servers over a SimEngine, plus its paper account."""

    def __init__(
        self,
        prices: PriceSource | None = None,
        clock: Clock | None = None,
        *,
        seed: int = 0,
        collateral: Decimal = Decimal(10000),
        markets: list[SimMarket] | None = None,
        basis: Decimal = Decimal(0),
        port: int = 0,
        ws_port: int = 0,
        publish_interval_s: float = 0.05,
        engine_factory: EngineFactory = SimEngine,
    ) -> None:
        self.clock = clock or SystemClock()
        self.prices = prices or PriceSource(self.clock, seed=seed)
        # A paper venue on live prices passes a LiveSimEngine factory: same matching, the live venue's prices.
        self.engine = engine_factory(
            "backpack", markets or DEFAULT_MARKETS, self.prices, self.clock,
            maker_fee=MAKER_FEE, taker_fee=TAKER_FEE, basis=basis, leverage_scope="account",
        )  # fmt: skip
        self._keys: dict[str, SimAccount] = {}
        rng = random.Random(seed)
        self.api_secret, self.api_key = self.add_account(
            "paper", collateral, bytes(rng.getrandbits(8) for _ in range(32))
        )
        self.http = SimHttpServer(self._routes(), admin_handler(self.engine, lambda: self.ws), self.engine.faults,
                                  self._injected_error, port=port)  # fmt: skip
        self.ws = SimWsServer(self._on_ws_message, port=ws_port)
        self._init_publisher("backpack", publish_interval_s)
        self._update_id = 0

    # ---- lifecycle --------------------------------------------------------------------------------------

    def add_account(self, name: str, collateral: Decimal, seed32: bytes | None = None) -> tuple[str, str]:
        """Create an account with its own key pair; returns (api_secret, api_key) in Backpack's base64 form."""
        key = SigningKey(seed32) if seed32 else SigningKey.generate()
        api_key = base64.b64encode(bytes(key.verify_key)).decode()
        self._keys[api_key] = self.engine.open_account(name, collateral)
        return base64.b64encode(bytes(key)).decode(), api_key

    def account(self, api_key: str | None = None) -> SimAccount:
        """The account behind an API key (the paper account by default)."""
        return self._keys[api_key or self.api_key]

    @property
    def rest_url(self) -> str:
        """Base URL of the REST API."""
        return self.http.url

    @property
    def ws_url(self) -> str:
        """URL of the websocket."""
        return f"ws://127.0.0.1:{self.ws.port}"

    def endpoints(self) -> dict[str, str]:
        """What the standalone command prints."""
        return {
            "rest": self.rest_url,
            "ws": self.ws_url,
            "api_key": self.api_key,
            "api_secret": self.api_secret,
            "admin": f"{self.rest_url}/_sim",
        }

    # ---- auth -------------------------------------------------------------------------------------------

    def _authenticate(self, request: Request, params: Mapping[str, Any]) -> SimAccount | Response:
        instruction = INSTRUCTIONS[(request.method, request.path)]
        api_key = request.headers.get("x-api-key")
        signature = request.headers.get("x-signature")
        timestamp = request.headers.get("x-timestamp")
        window = request.headers.get("x-window") or "5000"
        if not api_key or not signature or not timestamp:
            return _error(401, "UNAUTHORIZED", "Missing authentication headers")
        if not (timestamp.isascii() and timestamp.isdigit() and window.isascii() and window.isdigit()):
            return _error(400, "INVALID_CLIENT_REQUEST", "Invalid timestamp or window")
        if int(window) > MAX_WINDOW_MS:
            return _error(400, "INVALID_CLIENT_REQUEST", f"Window must be at most {MAX_WINDOW_MS}")
        now_ms = _ms(self.clock.now())
        # Expired requests are refused (spec §4: observed 401 "Request has expired"; its JSON code is
        # UNCERTAIN, INVALID_CLIENT_REQUEST is our choice). Far-future timestamps are refused the same way.
        if now_ms > int(timestamp) + int(window) or int(timestamp) > now_ms + int(window):
            return _error(401, "INVALID_CLIENT_REQUEST", "Request has expired")
        account = self._keys.get(api_key)
        try:
            verify_key = VerifyKey(base64.b64decode(api_key, validate=True))
            message = _expected_message(instruction, params, timestamp, window)
            verify_key.verify(message.encode(), base64.b64decode(signature, validate=True))
        except (BadSignatureError, ValueError, TypeError):
            return _error(401, "INVALID_SIGNATURE", "Invalid signature")
        if account is None:
            return _error(401, "UNAUTHORIZED", "Unknown API key")
        return account

    def _signed(self, request: Request) -> tuple[SimAccount, dict[str, Any]] | Response:
        if request.method in ("GET",):
            params: dict[str, Any] = dict(request.query)
        else:
            try:
                body = request.json()
            except ValueError:
                return Response(400, "Bad Request parse request payload error: invalid JSON")
            if body is None:
                body = {}
            if not isinstance(body, dict):
                return Response(400, "Bad Request parse request payload error: expected an object")
            params = body
        account = self._authenticate(request, params)
        if isinstance(account, Response):
            return account
        return account, params

    def _injected_error(self, injected: InjectedHttpError) -> Response:
        code = _HTTP_ERROR_CODES.get(injected.status, "SERVER_ERROR")
        response = _error(injected.status, code, f"Simulated HTTP {injected.status}")
        if injected.retry_after is not None:
            response.headers["Retry-After"] = str(injected.retry_after)
        return response

    def _reject(self, exc: SimRejectError) -> Response:
        if exc.kind is RejectKind.INJECTED:
            return _error(400, str(exc.venue_code), exc.message)
        status, code = _REJECT_CODES[exc.kind]
        return _error(status, code, exc.message)

    # ---- routes -----------------------------------------------------------------------------------------

    def _routes(self) -> dict[tuple[str, str], Any]:
        routes: dict[tuple[str, str], Any] = {
            ("GET", "/api/v1/markets"): self._markets,
            ("GET", "/api/v1/market"): self._market,
            ("GET", "/api/v1/markPrices"): self._mark_prices,
            ("GET", "/api/v1/depth"): self._depth,
            ("GET", "/api/v1/time"): lambda _r: Response(200, str(_ms(self.clock.now()))),
            ("GET", "/api/v1/ping"): lambda _r: Response(200, "pong"),
            ("GET", "/api/v1/status"): lambda _r: Response(200, {"status": "Ok", "message": None}),
        }
        signed = {
            ("POST", "/api/v1/order"): self._place,
            ("GET", "/api/v1/order"): self._get_order,
            ("DELETE", "/api/v1/order"): self._cancel,
            ("GET", "/api/v1/orders"): self._open_orders,
            ("GET", "/api/v1/position"): self._positions,
            ("GET", "/api/v1/capital/collateral"): self._collateral,
            ("GET", "/api/v1/account"): self._account,
            ("PATCH", "/api/v1/account"): self._update_account,
            ("GET", "/wapi/v1/history/orders"): self._order_history,
            ("GET", "/wapi/v1/history/fills"): self._fills,
            ("GET", "/wapi/v1/history/funding"): self._funding,
        }
        for key, handler in signed.items():
            routes[key] = self._guarded(handler)
        return routes

    def _guarded(self, handler: Any) -> Any:
        def run(request: Request) -> Response:
            auth = self._signed(request)
            if isinstance(auth, Response):
                return auth
            account, params = auth
            try:
                with self.engine.lock:
                    self.engine.tick()
                    return handler(account, params)
            except SimRejectError as exc:
                return self._reject(exc)
            except (KeyError, ValueError, ArithmeticError) as exc:
                return _error(400, "INVALID_CLIENT_REQUEST", f"Invalid request: {exc}")

        return run

    def _market_json(self, m: SimMarket) -> dict[str, Any]:
        return {
            "symbol": m.symbol, "baseSymbol": m.asset, "quoteSymbol": "USDC", "marketType": "PERP",
            "orderBookState": "Open", "visible": True, "createdAt": "2024-01-01T00:00:00",
            "filters": {
                "price": {"tickSize": _s(m.tick_size), "minPrice": _s(m.tick_size), "maxPrice": None},
                "quantity": {"stepSize": _s(m.step_size), "minQuantity": _s(m.min_quantity), "maxQuantity": None},
            },
            "imfFunction": {"type": "sqrt", "base": _s(m.initial_margin_rate), "factor": "0.00006"},
            "mmfFunction": {"type": "sqrt", "base": _s(m.maintenance_margin_rate), "factor": "0.00004"},
            "fundingInterval": m.funding_interval_s * 1000,
            "fundingRateUpperBound": "100", "fundingRateLowerBound": "-100", "openInterestLimit": "0",
        }  # fmt: skip

    def _markets(self, request: Request) -> Response:
        kind = request.query.get("marketType")
        if kind not in (None, "PERP"):
            return Response(200, [])
        return Response(200, [self._market_json(m) for m in self.engine.markets.values()])

    def _market(self, request: Request) -> Response:
        symbol = request.query.get("symbol", "")
        if symbol not in self.engine.markets:
            return _error(400, "INVALID_SYMBOL", f"Unknown symbol {symbol}")
        return Response(200, self._market_json(self.engine.markets[symbol]))

    def _mark_price_json(self, symbol: str) -> dict[str, Any]:
        m = self.engine.markets[symbol]
        return {
            "symbol": symbol,
            "markPrice": _s(self.engine.mark(symbol)),
            "indexPrice": _s(self.engine.mark(symbol)),
            "fundingRate": _s(m.funding_rate),
            "nextFundingTimestamp": self.engine.next_funding_ts(symbol) * 1000,
        }

    def _mark_prices(self, request: Request) -> Response:
        symbol = request.query.get("symbol")
        symbols = [symbol] if symbol else list(self.engine.markets)
        if any(s not in self.engine.markets for s in symbols):
            return _error(400, "INVALID_SYMBOL", f"Unknown symbol {symbol}")
        return Response(200, [self._mark_price_json(s) for s in symbols])

    def _depth(self, request: Request) -> Response:
        symbol = request.query.get("symbol", "")
        if symbol not in self.engine.markets:
            return _error(400, "INVALID_SYMBOL", f"Unknown symbol {symbol}")
        bids, asks = self.engine.book(symbol)
        self._update_id += 1
        return Response(200, {
            # Backpack does not document the side order; ascending asks and descending bids here.
            "asks": [[_s(p), _s(q)] for p, q in asks],
            "bids": [[_s(p), _s(q)] for p, q in bids],
            "lastUpdateId": str(self._update_id),
            "timestamp": int(self.clock.now().timestamp() * 1_000_000),
        })  # fmt: skip

    def order_json(self, o: SimOrder, *, history: bool = False) -> dict[str, Any]:
        """An order in Backpack's REST shape."""
        body: dict[str, Any] = {
            "id": o.id,
            "clientId": int(o.client_id) if o.client_id is not None else None,
            "symbol": o.symbol,
            "side": _SIDE[o.side],
            "orderType": "Market" if o.order_type is OrderType.MARKET else "Limit",
            "quantity": _s(o.quantity),
            "executedQuantity": _s(o.filled),
            "executedQuoteQuantity": _s(o.filled_quote),
            "status": _STATUS[o.status],
            "timeInForce": "IOC" if o.time_in_force is TimeInForce.IOC else "GTC",
            "selfTradePrevention": "RejectTaker",
            "reduceOnly": o.reduce_only,
            "createdAt": _iso(o.created_at) if history else _ms(o.created_at),
            "triggerPrice": None,
            "triggerQuantity": None,
        }
        if o.order_type is OrderType.LIMIT:
            body["price"] = _s(o.price)  # type: ignore[arg-type]
            body["postOnly"] = o.time_in_force is TimeInForce.POST_ONLY
        else:
            body["quoteQuantity"] = None
        if history:
            body["expiryReason"] = o.expiry_reason
            body["systemOrderType"] = "LiquidationAutoClose" if o.expiry_reason == "Liquidation" else None
        return body

    def _place(self, account: SimAccount, p: dict[str, Any]) -> Response:
        side = _SIDE_IN.get(p.get("side", ""))
        kind = p.get("orderType")
        if side is None or kind not in ("Market", "Limit"):
            return _error(400, "INVALID_ORDER", "Invalid side or orderType")
        if "quantity" not in p:
            return _error(400, "INVALID_QUANTITY", "Quantity is required")
        client_id = p.get("clientId")
        if client_id is not None and (not isinstance(client_id, int) or not 0 <= client_id < 2**32):
            return _error(400, "INVALID_CLIENT_REQUEST", "clientId must be a uint32")
        tif = TimeInForce.GTC
        if p.get("postOnly"):
            tif = TimeInForce.POST_ONLY
        elif p.get("timeInForce") in ("IOC", "FOK"):
            tif = TimeInForce.IOC
        order = self.engine.place(
            account,
            symbol=str(p.get("symbol")),
            side=side,
            order_type=OrderType.MARKET if kind == "Market" else OrderType.LIMIT,
            quantity=Decimal(str(p["quantity"])),
            price=Decimal(str(p["price"])) if p.get("price") is not None else None,
            time_in_force=tif,
            reduce_only=bool(p.get("reduceOnly", False)),
            client_id=None if client_id is None else str(client_id),
        )
        if self.engine.faults.take_blackhole():
            raise NeverAnswerError
        return Response(200, self.order_json(order))

    def _get_order(self, account: SimAccount, p: dict[str, Any]) -> Response:
        if ("orderId" in p) == ("clientId" in p):
            return _error(400, "INVALID_CLIENT_REQUEST", "Give exactly one of orderId and clientId")
        order = self.engine.find_order(account, order_id=p.get("orderId"), client_id=p.get("clientId"), open_only=True)
        return Response(200, self.order_json(order))

    def _cancel(self, account: SimAccount, p: dict[str, Any]) -> Response:
        client_id = p.get("clientId")
        order = self.engine.cancel(
            account, order_id=p.get("orderId"), client_id=None if client_id is None else str(client_id)
        )
        return Response(200, self.order_json(order))

    def _open_orders(self, account: SimAccount, p: dict[str, Any]) -> Response:
        symbol = p.get("symbol")
        return Response(200, [
            self.order_json(o) for o in account.orders.values()
            if not o.status.is_final and (symbol is None or o.symbol == symbol)
        ])  # fmt: skip

    def _positions(self, account: SimAccount, p: dict[str, Any]) -> Response:
        out = []
        for symbol, pos in account.positions.items():
            if not pos.quantity or (p.get("symbol") and p["symbol"] != symbol):
                continue
            m = self.engine.markets[symbol]
            mark = self.engine.mark(symbol)
            liq = self.engine.liquidation_price(account, symbol)
            out.append({
                "positionId": f"{account.name}-{symbol}", "symbol": symbol, "netQuantity": _s(pos.quantity),
                "netExposureQuantity": _s(abs(pos.quantity)), "netExposureNotional": _s(abs(pos.quantity) * mark),
                "netCost": _s(pos.quantity * pos.entry_price), "entryPrice": _s(pos.entry_price),
                "breakEvenPrice": _s(pos.entry_price), "markPrice": _s(mark),
                "estLiquidationPrice": _s(liq) if liq is not None else "0",
                "pnlUnrealized": _s((mark - pos.entry_price) * pos.quantity), "pnlRealized": _s(pos.realized_pnl),
                "cumulativeFundingPayment": _s(pos.funding), "imf": _s(m.initial_margin_rate),
                "mmf": _s(m.maintenance_margin_rate),
                "imfFunction": {"type": "sqrt", "base": _s(m.initial_margin_rate), "factor": "0.00006"},
                "mmfFunction": {"type": "sqrt", "base": _s(m.maintenance_margin_rate), "factor": "0.00004"},
                "userId": 1, "subaccountId": None, "cumulativeInterest": "0",
            })  # fmt: skip
        return Response(200, out)

    def _collateral(self, account: SimAccount, _p: dict[str, Any]) -> Response:
        e = self.engine
        equity = e.equity(account)
        exposure = e.exposure(account)
        initial = e.initial_requirement(account)
        maintenance = e.maintenance_requirement(account)
        fraction = (lambda x: _s((x / exposure).quantize(Decimal("0.00000001")))) if exposure else (lambda _x: "0")
        return Response(200, {
            "assetsValue": _s(account.collateral), "borrowLiability": "0",
            "collateral": [{
                "symbol": "USDC", "assetMarkPrice": "1", "totalQuantity": _s(account.collateral),
                "balanceNotional": _s(account.collateral), "collateralWeight": "1",
                "collateralValue": _s(account.collateral), "openOrderQuantity": "0", "lendQuantity": "0",
                "availableQuantity": _s(account.collateral),
            }],
            "imf": fraction(initial), "mmf": fraction(maintenance),
            "unsettledEquity": "0", "liabilitiesValue": "0",
            "marginFraction": fraction(equity) if exposure else None,
            "netEquity": _s(equity), "netEquityAvailable": _s(equity - initial), "netEquityLocked": _s(initial),
            "netExposureFutures": _s(exposure), "pnlUnrealized": _s(e.unrealized(account)),
        })  # fmt: skip

    def _account(self, account: SimAccount, _p: dict[str, Any]) -> Response:
        return Response(200, {
            "leverageLimit": _s(account.leverage_limit),
            "futuresMakerFee": _s(MAKER_FEE * 10000), "futuresTakerFee": _s(TAKER_FEE * 10000),
            "spotMakerFee": "8", "spotTakerFee": "10", "positionLimit": None, "borrowLimit": None,
            "limitOrders": 0, "triggerOrders": 0, "liquidating": False, "autoBorrowSettlements": True,
            "autoLend": False, "autoRealizePnl": True, "autoRepayBorrows": True,
        })  # fmt: skip

    def _update_account(self, account: SimAccount, p: dict[str, Any]) -> Response:
        if "leverageLimit" in p:
            leverage = Decimal(str(p["leverageLimit"]))
            venue_max = min(1 / m.initial_margin_rate for m in self.engine.markets.values())
            if not 1 <= leverage <= venue_max:
                return _error(400, "INVALID_CLIENT_REQUEST", f"leverageLimit must be within 1..{venue_max}")
            account.leverage_limit = leverage
            self.engine.touch()
        return Response(200, None)

    def _order_history(self, account: SimAccount, p: dict[str, Any]) -> Response:
        orders = [o for o in account.orders.values() if p.get("symbol") in (None, o.symbol)]
        if p.get("orderId"):
            orders = [o for o in orders if o.id == p["orderId"]]
        if p.get("sortDirection", "Desc") == "Desc":
            orders.reverse()
        offset, limit = int(p.get("offset", 0)), min(int(p.get("limit", 100)), 1000)
        return Response(200, [self.order_json(o, history=True) for o in orders[offset : offset + limit]])

    def _fills(self, account: SimAccount, p: dict[str, Any]) -> Response:
        fills = [f for f in account.fills if p.get("symbol") in (None, f.symbol)]
        if p.get("orderId"):
            fills = [f for f in fills if f.order_id == p["orderId"]]
        if p.get("fillType") == "User":
            fills = [f for f in fills if not f.system]
        fills.reverse()
        offset, limit = int(p.get("offset", 0)), min(int(p.get("limit", 100)), 1000)
        return Response(200, [{
            "tradeId": f.trade_id, "orderId": f.order_id, "clientId": f.client_id, "symbol": f.symbol,
            "side": _SIDE[f.side], "price": _s(f.price), "quantity": _s(f.quantity), "fee": _s(f.fee),
            "feeSymbol": "USDC", "isMaker": f.is_maker,
            "systemOrderType": "LiquidationAutoClose" if f.system else None, "timestamp": _iso(f.ts),
        } for f in fills[offset : offset + limit]])  # fmt: skip

    def _funding(self, account: SimAccount, p: dict[str, Any]) -> Response:
        items = [f for f in reversed(account.funding) if p.get("symbol") in (None, f.symbol)]
        limit = min(int(p.get("limit", 100)), 1000)
        return Response(200, [{
            "userId": 1, "subaccountId": None, "symbol": f.symbol, "quantity": _s(f.amount),
            "intervalEndTimestamp": _iso(f.ts), "fundingRate": _s(f.rate),
        } for f in items[:limit]])  # fmt: skip

    # ---- websocket --------------------------------------------------------------------------------------

    def _on_ws_message(self, text: str) -> tuple[set[str], set[str], str | None]:
        try:
            msg = json.loads(text)
            method = msg["method"]
            streams = {str(s) for s in msg["params"]}
        except (ValueError, KeyError, TypeError):
            return set(), set(), json.dumps({"id": None, "error": {"code": 4000, "message": "Invalid request"}})
        known = {f"{kind}.{s}" for s in self.engine.markets for kind in ("bookTicker", "markPrice")}
        unknown = streams - known
        if method == "SUBSCRIBE":
            reply = None
            if unknown:
                reply = json.dumps({"id": None, "error": {"code": 4006, "message": "Invalid stream"}})
            return streams & known, set(), reply
        if method == "UNSUBSCRIBE":
            return set(), streams, None
        return set(), set(), json.dumps({"id": None, "error": {"code": 4000, "message": "Invalid method"}})

    def publish_once(self) -> int:
        """Push bookTicker and markPrice for every market whose values changed; returns frames sent."""
        with self._publish_lock:
            return self._publish_changes()

    def _publish_changes(self) -> int:
        sent = 0
        now_us = int(self.clock.now().timestamp() * 1_000_000)
        for symbol in self.engine.markets:
            with self.engine.lock:
                self.engine.tick()
                bids, asks = self.engine.book(symbol)
                mark = self._mark_price_json(symbol)
            top = (bids[0], asks[0])
            if self._last_sent.get(f"bookTicker.{symbol}") != top:
                self._last_sent[f"bookTicker.{symbol}"] = top
                self._update_id += 1
                data = {"e": "bookTicker", "E": now_us, "s": symbol, "a": _s(asks[0][0]), "A": _s(asks[0][1]),
                        "b": _s(bids[0][0]), "B": _s(bids[0][1]), "u": str(self._update_id), "T": now_us}  # fmt: skip
                sent += self.ws.publish(
                    f"bookTicker.{symbol}", json.dumps({"stream": f"bookTicker.{symbol}", "data": data})
                )
            key = (mark["markPrice"], mark["fundingRate"], mark["nextFundingTimestamp"])
            if self._last_sent.get(f"markPrice.{symbol}") != key:
                self._last_sent[f"markPrice.{symbol}"] = key
                data = {"e": "markPrice", "E": now_us, "s": symbol, "p": mark["markPrice"], "f": mark["fundingRate"],
                        "i": mark["indexPrice"], "n": mark["nextFundingTimestamp"], "T": now_us}  # fmt: skip
                sent += self.ws.publish(
                    f"markPrice.{symbol}", json.dumps({"stream": f"markPrice.{symbol}", "data": data})
                )
        return sent


def main(argv: list[str] | None = None) -> int:
    """Run the simulator until killed; first stdout line is the JSON description."""
    parser = argparse.ArgumentParser(description="Backpack exchange simulator on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="REST port (0: any free port)")
    parser.add_argument("--ws-port", type=int, default=0, help="websocket port (0: any free port)")
    parser.add_argument("--seed", type=int, default=0, help="seed of prices and of the paper account's key")
    parser.add_argument("--collateral", type=Decimal, default=Decimal(10000), help="USDC in the paper account")
    args = parser.parse_args(argv)
    sim = BackpackSim(seed=args.seed, collateral=args.collateral, port=args.port, ws_port=args.ws_port).start()
    print(json.dumps(sim.endpoints()), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
