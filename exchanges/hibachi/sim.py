"""A Hibachi exchange on loopback: both hosts' paths, JSON shapes, status codes, error bodies and signatures.

Deliberately independent of `exchanges.hibachi.signing` and `.parse` (payloads are rebuilt here with
integer/Fraction arithmetic): a mistake shared by client and simulator would otherwise pass both.

Error codes: 2 (bad signature), 3 (not found) and 4 (invalid input) are the venue's (spec §4). Codes for a
bad API key (1) and the wording of margin and nonce errors are our choice; the spec records none.

Standalone: `python -m exchanges.hibachi.sim --port 0 [--seed N]` prints one JSON line with its URLs and the
paper account's credentials (usable with either key type), then serves until killed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import random
import re
import struct
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from coincurve import PrivateKey, PublicKey

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

MAKER_FEE = Decimal("0.00015")  # spec §6, DOCS and CCXT defaults
TAKER_FEE = Decimal("0.00045")
NONCE_WINDOW_S = 15.0  # spec §4
HOURLY = 3600  # spec §6 item 3: settlements seen in 2026 fall on the hour

_IMR, _MMR = Decimal("0.066667"), Decimal("0.046667")  # SDK fixtures: 15x
_HOURLY_RATE = Decimal("0.0000125")
# Builds the venue's engine from SimEngine's arguments (SimEngine itself, or a live-priced one).
EngineFactory = Callable[..., SimEngine]


@dataclass(frozen=True)
class SimContract:
    """A simulated future contract: the engine's market plus Hibachi's id and decimals."""

    market: SimMarket
    id: int
    underlying_decimals: int
    settlement_decimals: int = 6
    granularities: tuple[str, ...] = ()


DEFAULT_CONTRACTS = [
    SimContract(SimMarket("BTC/USDT-P", "BTC", Decimal("0.1"), Decimal("0.0000000001"), Decimal("0.0000000001"),
                          Decimal(1), _IMR, _MMR, HOURLY, _HOURLY_RATE), 2, 10, 6, ("0.1", "1", "10", "100")),
    SimContract(SimMarket("ETH/USDT-P", "ETH", Decimal("0.01"), Decimal("0.000000001"), Decimal("0.000000001"),
                          Decimal(1), _IMR, _MMR, HOURLY, _HOURLY_RATE), 1, 9, 6, ("0.01", "0.1", "1", "10")),
    SimContract(SimMarket("SOL/USDT-P", "SOL", Decimal("0.001"), Decimal("0.00000001"), Decimal("0.00000001"),
                          Decimal(1), _IMR, _MMR, HOURLY, _HOURLY_RATE, level_size=Decimal(500)), 3, 8, 6,
                ("0.001", "0.01", "0.1", "1")),
]  # fmt: skip

_STATUS = {
    OrderStatus.NEW: "PLACED",
    OrderStatus.PARTIALLY_FILLED: "PARTIALLY_FILLED",
    OrderStatus.FILLED: "FILLED",
    OrderStatus.CANCELLED: "CANCELLED",
    OrderStatus.REJECTED: "REJECTED",
}
_SIDE = {Side.LONG: "BID", Side.SHORT: "ASK"}
_SIDE_IN = {"BID": Side.LONG, "ASK": Side.SHORT}
_FLAGS = {"POST_ONLY", "IOC", "REDUCE_ONLY"}
_CLIENT_ID = re.compile(r"^[A-Za-z0-9-]{1,32}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TOPICS = ("mark_price", "ask_bid_price")


def _s(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")


def _usd(value: Decimal) -> str:
    """A USDT amount as the venue prints it: six decimals (settlementDecimals)."""
    return format(value.quantize(Decimal("0.000001")), "f")


def _error(status: int, code: int, message: str) -> Response:
    return Response(status, {"errorCode": code, "message": message, "status": "failed"})


def _us(ts: datetime) -> int:
    return (ts - _EPOCH) // timedelta(microseconds=1)


def _expected_payload(
    nonce: int, contract: SimContract, quantity: Decimal, side: Side, price: Decimal | None, fee: Decimal
) -> bytes:
    """The bytes the venue verifies (written from the spec with exact fractions, apart from the client)."""

    def floor(value: Fraction) -> int:
        return value.numerator // value.denominator

    ud, sd = contract.underlying_decimals, contract.settlement_decimals
    out = struct.pack(">QI", nonce, contract.id) + struct.pack(">Q", floor(Fraction(quantity) * 10**ud))
    out += struct.pack(">I", 1 if side is Side.LONG else 0)
    if price is not None:
        out += struct.pack(">Q", floor(Fraction(price) * 2**32 * Fraction(10) ** (sd - ud)))
    return out + struct.pack(">Q", floor(Fraction(fee) * 10**8))


@dataclass
class SimCredentials:
    """One Hibachi account: id, API key, both kinds of signing key, and the nonces it has used."""

    account_id: int
    api_key: str
    hmac_secret: str
    private_key: str  # 0x + 64 hex
    public_key: bytes  # uncompressed, 65 bytes
    account: SimAccount
    nonces: dict[int, int] = field(default_factory=dict)  # nonce (µs) -> seen at (µs)

    def signature_ok(self, payload: bytes, signature: Any) -> bool:
        """HMAC (64 hex) or ECDSA r||s||v (130 hex, v in 0/1) by this account's keys."""
        if not isinstance(signature, str):
            return False
        try:
            raw = bytes.fromhex(signature)
        except ValueError:
            return False
        if len(raw) == 32:
            expected = hmac.new(self.hmac_secret.encode(), payload, hashlib.sha256).digest()
            return hmac.compare_digest(raw, expected)
        if len(raw) == 65 and raw[64] in (0, 1):
            try:
                recovered = PublicKey.from_signature_and_message(raw, hashlib.sha256(payload).digest(), hasher=None)
            except (ValueError, TypeError):
                return False
            return recovered.format(compressed=False) == self.public_key
        return False


class HibachiSim(SimVenue):
    """The simulated venue: REST (trade + data paths) and market websocket over a SimEngine."""

    def __init__(
        self,
        prices: PriceSource | None = None,
        clock: Clock | None = None,
        *,
        seed: int = 0,
        collateral: Decimal = Decimal(10000),
        contracts: list[SimContract] | None = None,
        basis: Decimal = Decimal(0),
        port: int = 0,
        ws_port: int = 0,
        publish_interval_s: float = 0.05,
        engine_factory: EngineFactory = SimEngine,
        nonce_window_s: float = NONCE_WINDOW_S,
    ) -> None:
        self.clock = clock or SystemClock()
        self.prices = prices or PriceSource(self.clock, seed=seed)
        self.contracts = {c.market.symbol: c for c in contracts or DEFAULT_CONTRACTS}
        # A paper venue on live prices passes a LiveSimEngine factory: same matching, the live venue's prices.
        self.engine = engine_factory(
            "hibachi", [c.market for c in self.contracts.values()], self.prices, self.clock,
            maker_fee=MAKER_FEE, taker_fee=TAKER_FEE, basis=basis, leverage_scope="market",
        )  # fmt: skip
        self.status = "NORMAL"  # or SCHEDULED_MAINTENANCE / UNSCHEDULED_MAINTENANCE
        self.nonce_window_s = nonce_window_s
        self._accounts: dict[int, SimCredentials] = {}
        self._rng = random.Random(seed)
        self.paper = self.add_account("paper", collateral)
        self.http = SimHttpServer(self._routes(), admin_handler(self.engine, lambda: self.ws), self.engine.faults,
                                  self._injected_error, port=port)  # fmt: skip
        self.ws = SimWsServer(self._on_ws_message, port=ws_port, path="/ws/market")
        self._init_publisher("hibachi", publish_interval_s)

    # ---- lifecycle --------------------------------------------------------------------------------------

    def add_account(self, name: str, collateral: Decimal) -> SimCredentials:
        """Create a funded account with an API key, an HMAC secret and a secp256k1 key (all seeded)."""
        rng = self._rng
        key = PrivateKey(bytes(rng.getrandbits(8) for _ in range(32)))
        creds = SimCredentials(
            account_id=rng.randint(100, 99999),
            api_key=base64.urlsafe_b64encode(bytes(rng.getrandbits(8) for _ in range(24))).decode(),
            hmac_secret=base64.b64encode(bytes(rng.getrandbits(8) for _ in range(32))).decode(),  # 44 chars
            private_key="0x" + key.secret.hex(),
            public_key=key.public_key.format(compressed=False),
            account=self.engine.open_account(name, collateral),
        )
        self._accounts[creds.account_id] = creds
        return creds

    def account(self, account_id: int | None = None) -> SimAccount:
        """The engine account behind an account id (the paper account by default)."""
        return self._accounts[account_id or self.paper.account_id].account

    @property
    def api_url(self) -> str:
        """Trade host (the same server also answers the data paths)."""
        return self.http.url

    @property
    def data_api_url(self) -> str:
        """Market-data host."""
        return self.http.url

    @property
    def ws_market_url(self) -> str:
        """Market websocket."""
        return f"ws://127.0.0.1:{self.ws.port}/ws/market"

    def endpoints(self) -> dict[str, Any]:
        """What the standalone command prints."""
        return {
            "api": self.api_url,
            "data_api": self.data_api_url,
            "ws_market": self.ws_market_url,
            "api_key": self.paper.api_key,
            "account_id": self.paper.account_id,
            "hmac_secret": self.paper.hmac_secret,
            "private_key": self.paper.private_key,
            "admin": f"{self.api_url}/_sim",
        }

    # ---- auth -------------------------------------------------------------------------------------------

    def _identify(self, request: Request, params: Mapping[str, Any]) -> SimCredentials | Response:
        raw_id = params.get("accountId")
        try:
            account_id = int(raw_id)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return _error(400, 4, "Missing accountId")
        creds = self._accounts.get(account_id)
        api_key = request.headers.get("authorization", "")
        if creds is None or not hmac.compare_digest(api_key.encode(), creds.api_key.encode()):
            return _error(401, 1, "Invalid API key for this account")
        return creds

    def _check_signed(
        self, creds: SimCredentials, payload: bytes, signature: Any, nonce: int | None
    ) -> Response | None:
        """Signature first (code 2), then the nonce's window and uniqueness; records the nonce if all pass."""
        if not creds.signature_ok(payload, signature):
            return _error(400, 2, "Invalid signature")
        if nonce is None:
            return None
        nonce_us = nonce if nonce >= 10**15 else nonce * 1000  # ms or µs (spec §4)
        now_us = _us(self.clock.now())
        window_us = int(self.nonce_window_s * 1_000_000)
        if abs(now_us - nonce_us) > window_us:
            return _error(400, 4, f"Invalid nonce {nonce}: outside the allowed window of server time")
        for old, seen in list(creds.nonces.items()):
            if now_us - seen > 2 * window_us:
                del creds.nonces[old]
        if nonce_us in creds.nonces:
            return _error(400, 4, f"Invalid nonce {nonce}: already used")
        creds.nonces[nonce_us] = now_us
        return None

    def _injected_error(self, injected: InjectedHttpError) -> Response:
        if injected.status == 429:
            response = Response(429, {"name": "default", "count": 11, "limit": 10, "windowDuration": 1000})
            if injected.retry_after is not None:
                response.headers["Retry-After"] = str(injected.retry_after)
            return response
        return Response(injected.status, {"message": f"Simulated HTTP {injected.status}", "status": "failed"})

    def _reject(self, exc: SimRejectError) -> Response:
        if exc.kind is RejectKind.INJECTED:
            code = exc.venue_code if isinstance(exc.venue_code, int) else 4
            return _error(400, code, exc.message)
        if exc.kind is RejectKind.NOT_FOUND:
            return _error(404, 3, exc.message)
        if exc.kind is RejectKind.INSUFFICIENT_MARGIN:
            return _error(400, 4, "Insufficient margin: " + exc.message)
        return _error(400, 4, exc.message)

    # ---- routes -----------------------------------------------------------------------------------------

    def _routes(self) -> dict[tuple[str, str], Any]:
        public = {
            ("GET", "/market/exchange-info"): self._exchange_info,
            ("GET", "/market/data/prices"): self._prices,
            ("GET", "/market/data/orderbook"): self._orderbook,
            ("GET", "/exchange/utc-timestamp"): lambda _r: Response(
                200, {"timestampMs": _us(self.clock.now()) // 1000}
            ),
        }
        private = {
            ("GET", "/trade/account/info"): self._account_info,
            ("GET", "/capital/balance"): self._balance,
            ("GET", "/trade/orders"): self._open_orders,
            ("GET", "/trade/order"): self._get_order,
            ("POST", "/trade/order"): self._place,
            ("DELETE", "/trade/order"): self._cancel,
            ("GET", "/trade/account/trades"): self._trades,
            ("GET", "/trade/account/settlements_history"): self._settlements,
            ("POST", "/trade/account/leverage"): self._leverage,
        }
        routes: dict[tuple[str, str], Any] = {k: self._public(h) for k, h in public.items()}
        routes.update({k: self._private(h) for k, h in private.items()})
        return routes

    def _public(self, handler: Any) -> Any:
        def run(request: Request) -> Response:
            symbol = request.query.get("symbol")
            if symbol is not None and symbol not in self.contracts:
                return _error(400, 4, f"Invalid symbol: {symbol}")
            with self.engine.lock:
                self.engine.tick()
                return handler(request)

        return run

    def _private(self, handler: Any) -> Any:
        def run(request: Request) -> Response:
            if request.method == "GET":
                params: dict[str, Any] = dict(request.query)
            else:
                try:
                    params = request.json() or {}
                except ValueError:
                    return _error(400, 4, "Invalid JSON body")
                if not isinstance(params, dict):
                    return _error(400, 4, "Body must be a JSON object")
            creds = self._identify(request, params)
            if isinstance(creds, Response):
                return creds
            try:
                with self.engine.lock:
                    self.engine.tick()
                    return handler(creds, params)
            except SimRejectError as exc:
                return self._reject(exc)
            except (KeyError, ValueError, ArithmeticError, TypeError) as exc:
                return _error(400, 4, f"Invalid input: {exc}")

        return run

    # ---- market data ------------------------------------------------------------------------------------

    def _contract_json(self, c: SimContract) -> dict[str, Any]:
        m = c.market
        return {
            "id": c.id, "symbol": m.symbol, "displayName": f"{m.asset}/USDT Perps", "underlyingSymbol": m.asset,
            "settlementSymbol": "USDT", "underlyingDecimals": c.underlying_decimals,
            "settlementDecimals": c.settlement_decimals, "tickSize": _s(m.tick_size), "stepSize": _s(m.step_size),
            "minOrderSize": _s(m.min_quantity), "minNotional": _s(m.min_notional),
            "orderbookGranularities": list(c.granularities), "initialMarginRate": _s(m.initial_margin_rate),
            "maintenanceMarginRate": _s(m.maintenance_margin_rate), "status": "LIVE", "live": True,
            "marketCreationTimestamp": "1727701319.73488",
        }  # fmt: skip

    def _exchange_info(self, _request: Request) -> Response:
        body: dict[str, Any] = {
            "status": self.status,
            "maintenanceWindow": [],
            "feeConfig": {
                "tradeMakerFeeRate": format(MAKER_FEE, ".8f"), "tradeTakerFeeRate": format(TAKER_FEE, ".8f"),
                "transferFeeRate": "0.00010000", "withdrawalFees": "0.000237", "depositFees": "0.000237",
            },
            "instantWithdrawalLimit": {"lowerLimit": "0", "upperLimit": "1000"},
            "futureContracts": [self._contract_json(c) for c in self.contracts.values()],
        }  # fmt: skip
        if self.status != "NORMAL":
            now = self.clock.now().timestamp()
            body["currentMaintenanceWindow"] = {"begin": now - 60, "end": now + 3600, "note": "simulated maintenance"}
        return Response(200, body)

    def _prices_json(self, symbol: str) -> dict[str, Any]:
        bids, asks = self.engine.book(symbol)
        mark = self.engine.mark(symbol)
        return {
            "symbol": symbol, "markPrice": _s(mark), "spotPrice": _s(mark), "tradePrice": _s(mark),
            "bidPrice": _s(bids[0][0]), "askPrice": _s(asks[0][0]),
            "fundingRateEstimation": {
                "estimatedFundingRate": _s(self.engine.markets[symbol].funding_rate),
                "nextFundingTimestamp": self.engine.next_funding_ts(symbol),
            },
        }  # fmt: skip

    def _prices(self, request: Request) -> Response:
        if "symbol" not in request.query:
            return _error(400, 4, "Missing symbol")
        return Response(200, self._prices_json(request.query["symbol"]))

    def _orderbook(self, request: Request) -> Response:
        if "symbol" not in request.query:
            return _error(400, 4, "Missing symbol")
        depth = int(request.query.get("depth", "5"))
        if not 1 <= depth <= 100:
            return _error(400, 4, "depth must be between 1 and 100")
        bids, asks = self.engine.book(request.query["symbol"])

        def side(levels: list[tuple[Decimal, Decimal]]) -> dict[str, Any]:
            levels = levels[:depth]
            return {
                "startPrice": _s(levels[0][0]), "endPrice": _s(levels[-1][0]),
                "levels": [{"price": _s(p), "quantity": _s(q)} for p, q in levels],
            }  # fmt: skip

        return Response(200, {"bid": side(bids), "ask": side(asks)})

    # ---- account ----------------------------------------------------------------------------------------

    def _account_info(self, creds: SimCredentials, _p: dict[str, Any]) -> Response:
        e, acc = self.engine, creds.account
        positions = []
        for symbol, pos in acc.positions.items():
            if not pos.quantity:
                continue
            mark = e.mark(symbol)
            qty = abs(pos.quantity)
            positions.append({
                "symbol": symbol, "direction": "Long" if pos.quantity > 0 else "Short", "quantity": _s(qty),
                "entryNotional": _usd(pos.entry_price * qty), "notionalValue": _usd(mark * qty),
                "openPrice": _s(pos.entry_price), "markPrice": _s(mark),
                "unrealizedTradingPnl": _usd((mark - pos.entry_price) * pos.quantity),
                "unrealizedFundingPnl": "0",
            })  # fmt: skip
        equity = e.equity(acc)
        initial = e.initial_requirement(acc)
        unrealized = e.unrealized(acc)
        open_notional = sum(
            ((o.quantity - o.filled) * (o.price or e.mark(o.symbol)) for o in acc.orders.values()
             if not o.status.is_final and not o.reduce_only), Decimal(0),
        )  # fmt: skip
        return Response(200, {
            "balance": _usd(equity), "maximalWithdraw": _usd(max(Decimal(0), equity - initial)),
            "assets": [{"symbol": "USDT", "quantity": _usd(acc.collateral)}], "numFreeTransfersRemaining": 100,
            "positions": positions, "totalPositionNotional": _usd(e.exposure(acc)),
            "totalOrderNotional": _usd(open_notional), "totalUnrealizedPnl": _usd(unrealized),
            "totalUnrealizedTradingPnl": _usd(unrealized), "totalUnrealizedFundingPnl": "0",
            "initialMargin": _usd(initial), "maintenanceMargin": _usd(e.maintenance_requirement(acc)),
            "leverages": [{"symbol": s, "initialMarginRate": _s(r)} for s, r in acc.market_imr.items()],
            "tradeMakerFeeRate": None, "tradeTakerFeeRate": None,
        })  # fmt: skip

    def _balance(self, creds: SimCredentials, _p: dict[str, Any]) -> Response:
        return Response(200, {"balance": _usd(self.engine.equity(creds.account))})

    def _leverage(self, creds: SimCredentials, p: dict[str, Any]) -> Response:
        symbol = str(p["symbol"])
        self.engine.set_market_imr(creds.account, symbol, Decimal(str(p["initialMarginRate"])))
        return Response(200, {"status": "success"})

    # ---- orders -----------------------------------------------------------------------------------------

    def _wire_status(self, o: SimOrder) -> str:
        if o.status is OrderStatus.EXPIRED:
            # IOC/market remainders end cancelled; post-only and reduce-only refusals end rejected.
            if o.expiry_reason in ("PostOnlyTaker", "ReduceOnlyNotReduced"):
                return "REJECTED"
            return "FILLED" if o.filled >= o.quantity else "CANCELLED"
        return _STATUS[o.status]

    def order_json(self, creds: SimCredentials, o: SimOrder) -> dict[str, Any]:
        """An order in the shape of GET /trade/order and /trade/orders."""
        flag = None
        if o.reduce_only:
            flag = "REDUCE_ONLY"
        elif o.time_in_force is TimeInForce.IOC and o.order_type is OrderType.LIMIT:
            flag = "IOC"
        elif o.time_in_force is TimeInForce.POST_ONLY:
            flag = "POST_ONLY"
        return {
            "orderId": o.id, "accountId": creds.account_id, "contractId": self.contracts[o.symbol].id,
            "symbol": o.symbol, "side": _SIDE[o.side],
            "orderType": "MARKET" if o.order_type is OrderType.MARKET else "LIMIT",
            "price": _s(o.price) if o.price is not None else None, "totalQuantity": _s(o.quantity),
            "availableQuantity": _s(o.quantity - o.filled), "status": self._wire_status(o),
            "creationTime": int(o.created_at.timestamp()), "orderFlags": flag, "triggerPrice": None,
            "triggerDirection": None, "clientId": o.client_id,
        }  # fmt: skip

    @staticmethod
    def _check_options(creds: SimCredentials, flag: Any, fee: Decimal, client_id: Any) -> Response | None:
        """orderFlags (one value), maxFeesPercent (covers the applicable rate), clientId (valid, unused)."""
        if flag is not None and flag not in _FLAGS:
            return _error(400, 4, f"Invalid orderFlags {flag!r}: one of {sorted(_FLAGS)}")
        needed = MAKER_FEE if flag == "POST_ONLY" else max(MAKER_FEE, TAKER_FEE)
        if fee < needed:
            return _error(400, 4, f"maxFeesPercent {fee} is below the fee rate {needed}")
        if client_id is not None:
            if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
                return _error(400, 4, "Invalid clientId: 1-32 characters of [A-Za-z0-9-]")
            if any(o.client_id == client_id for o in creds.account.orders.values()):
                return _error(400, 4, f"Duplicate clientId {client_id}")
        return None

    def _place(self, creds: SimCredentials, p: dict[str, Any]) -> Response:
        if self.status != "NORMAL":
            return _error(503, 4, f"Exchange is in {self.status}")
        for key in ("symbol", "nonce", "side", "orderType", "quantity", "maxFeesPercent", "signature"):
            if key not in p:
                return _error(422, 4, f"Missing {key}")
        symbol, kind, side = str(p["symbol"]), p["orderType"], _SIDE_IN.get(p["side"])
        contract = self.contracts.get(symbol)
        if contract is None or side is None or kind not in ("LIMIT", "MARKET"):
            return _error(400, 4, "Invalid symbol, side or orderType")
        if kind == "LIMIT" and p.get("price") is None:
            return _error(400, 4, "Missing price for a LIMIT order")
        nonce = p["nonce"]
        if not isinstance(nonce, int) or isinstance(nonce, bool) or not 0 < nonce < 2**64:
            return _error(400, 4, "Invalid nonce")
        quantity, fee = Decimal(str(p["quantity"])), Decimal(str(p["maxFeesPercent"]))
        price = Decimal(str(p["price"])) if kind == "LIMIT" else None
        payload = _expected_payload(nonce, contract, quantity, side, price, fee)
        refused = self._check_signed(creds, payload, p["signature"], nonce)
        if refused is not None:
            return refused
        flag = p.get("orderFlags")
        refused = self._check_options(creds, flag, fee, p.get("clientId"))
        if refused is not None:
            return refused
        client_id = p.get("clientId")
        tif = {"IOC": TimeInForce.IOC, "POST_ONLY": TimeInForce.POST_ONLY}.get(flag or "", TimeInForce.GTC)
        order = self.engine.place(
            creds.account, symbol=symbol, side=side,
            order_type=OrderType.MARKET if kind == "MARKET" else OrderType.LIMIT, quantity=quantity, price=price,
            time_in_force=tif, reduce_only=flag == "REDUCE_ONLY", client_id=client_id, nonce=nonce,
        )  # fmt: skip
        if self.engine.faults.take_blackhole():
            raise NeverAnswerError
        return Response(200, {"orderId": order.id})

    def _find(self, creds: SimCredentials, p: Mapping[str, Any], *, open_only: bool = False) -> SimOrder:
        given = [k for k in ("orderId", "nonce", "clientId") if p.get(k) is not None]
        if len(given) != 1:
            raise SimRejectError(RejectKind.INJECTED, "Give exactly one of orderId, nonce and clientId", 4)
        nonce = int(p["nonce"]) if "nonce" in given else None
        return self.engine.find_order(
            creds.account, order_id=None if p.get("orderId") is None else str(p["orderId"]),
            client_id=p.get("clientId"), nonce=nonce, open_only=open_only,
        )  # fmt: skip

    def _get_order(self, creds: SimCredentials, p: dict[str, Any]) -> Response:
        return Response(200, self.order_json(creds, self._find(creds, p)))

    def _open_orders(self, creds: SimCredentials, _p: dict[str, Any]) -> Response:
        return Response(
            200, [self.order_json(creds, o) for o in creds.account.orders.values() if not o.status.is_final]
        )

    def _cancel(self, creds: SimCredentials, p: dict[str, Any]) -> Response:
        try:
            order = self._find(creds, p)
        except SimRejectError as exc:
            return _error(404, 3, f"order ID {p.get('orderId') or p.get('nonce') or p.get('clientId')}: {exc}")
        # Signed over the 8-byte orderId, or the nonce when cancelling by nonce (spec §2).
        handle = int(p["nonce"]) if p.get("nonce") is not None else int(order.id)
        refused = self._check_signed(creds, struct.pack(">Q", handle), p.get("signature"), None)
        if refused is not None:
            return refused
        if order.status.is_final:
            return _error(404, 3, f"order ID {order.id} is not open")
        self.engine.cancel(creds.account, order_id=order.id)
        return Response(200, {})

    def _trades(self, creds: SimCredentials, p: dict[str, Any]) -> Response:
        by_id = {c.id: s for s, c in self.contracts.items()}
        fills = list(reversed(creds.account.fills))
        if p.get("contractId") is not None:
            fills = [f for f in fills if f.symbol == by_id.get(int(p["contractId"]))]
        if p.get("maxJournalId") is not None:
            fills = [f for f in fills if f.trade_id <= int(p["maxJournalId"])]
        limit = min(int(p.get("limit", 100)), 100)
        out = []
        for f in fills[:limit]:
            ours = f.side is Side.LONG
            out.append({
                "id": f.trade_id, "symbol": f.symbol, "side": "Buy" if ours else "Sell",
                "orderType": creds.account.orders[f.order_id].order_type.value.upper(),
                "price": _s(f.price), "quantity": _s(f.quantity), "fee": _s(f.fee),
                "realizedPnl": _s(f.realized_pnl), "timestamp": int(f.ts.timestamp()),
                "timestamp_ns_partial": f.ts.microsecond * 1000, "isTaker": not f.is_maker,
                "bidOrderId": int(f.order_id) if ours else None, "askOrderId": None if ours else int(f.order_id),
                "bidAccountId": creds.account_id if ours else None,
                "askAccountId": None if ours else creds.account_id,
            })  # fmt: skip
        return Response(200, {"trades": out})

    def _settlements(self, creds: SimCredentials, p: dict[str, Any]) -> Response:
        by_id = {c.id: s for s, c in self.contracts.items()}
        items = list(reversed(creds.account.funding))
        if p.get("contractId") is not None:
            items = [f for f in items if f.symbol == by_id.get(int(p["contractId"]))]
        limit = min(int(p.get("limit", 100)), 100)
        return Response(200, {"settlements": [{
            "symbol": f.symbol, "direction": "Long" if f.quantity > 0 else "Short", "quantity": _s(abs(f.quantity)),
            "indexPrice": _s(f.price), "settledAmount": _s(f.amount), "timestamp": int(f.ts.timestamp()),
        } for f in items[:limit]]})  # fmt: skip

    # ---- market websocket -------------------------------------------------------------------------------

    def _on_ws_message(self, text: str) -> tuple[set[str], set[str], str | None]:
        try:
            msg = json.loads(text)
            method = msg["method"]
            subs = msg.get("parameters", {}).get("subscriptions", []) if method != "list_subscription" else []
            keys = {f"{s['topic']}:{s['symbol']}" for s in subs}
        except (ValueError, KeyError, TypeError, AttributeError):
            return set(), set(), json.dumps({"status": 400, "error": "Invalid request"})
        known = {f"{t}:{s}" for s in self.contracts for t in _TOPICS}
        if method == "subscribe":
            return keys & known, set(), None  # no reply on success (spec §5)
        if method == "unsubscribe":
            return set(), keys, None
        return set(), set(), json.dumps({"status": 400, "error": f"Unsupported method {method!r}"})

    def publish_once(self) -> int:
        """Push ask_bid_price and mark_price for every contract whose values changed; returns frames sent."""
        with self._publish_lock:
            sent = 0
            for symbol in self.contracts:
                with self.engine.lock:
                    self.engine.tick()
                    bids, asks = self.engine.book(symbol)
                    mark = self.engine.mark(symbol)
                frames = {
                    "ask_bid_price": {"bidPrice": _s(bids[0][0]), "bidSize": _s(bids[0][1]),
                                      "askPrice": _s(asks[0][0]), "askSize": _s(asks[0][1])},
                    "mark_price": {"markPrice": _s(mark)},
                }  # fmt: skip
                for topic, data in frames.items():
                    key = f"{topic}:{symbol}"
                    if self._last_sent.get(key) == tuple(data.values()):
                        continue
                    self._last_sent[key] = tuple(data.values())
                    sent += self.ws.publish(key, json.dumps({"symbol": symbol, "topic": topic, "data": data}))
            return sent


def main(argv: list[str] | None = None) -> int:
    """Run the simulator until killed; first stdout line is the JSON description."""
    parser = argparse.ArgumentParser(description="Hibachi exchange simulator on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="REST port for both hosts (0: any free port)")
    parser.add_argument("--ws-port", type=int, default=0, help="market websocket port (0: any free port)")
    parser.add_argument("--seed", type=int, default=0, help="seed of prices and of the paper account's keys")
    parser.add_argument("--collateral", type=Decimal, default=Decimal(10000), help="USDT in the paper account")
    parser.add_argument("--nonce-window", type=float, default=NONCE_WINDOW_S, help="accepted nonce age, seconds")
    args = parser.parse_args(argv)
    sim = HibachiSim(
        seed=args.seed,
        collateral=args.collateral,
        port=args.port,
        ws_port=args.ws_port,
        nonce_window_s=args.nonce_window,
    ).start()
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
