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
from datetime import timedelta
from decimal import Decimal
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from core.clock import Clock, SystemClock
from exchanges.backpack.sim_history import BackpackHistoryApi
from exchanges.backpack.sim_private import BackpackPrivateApi
from exchanges.backpack.sim_public import BackpackPublicApi
from exchanges.backpack.sim_streams import BackpackStreams
from exchanges.backpack.sim_streams_private import PRIVATE_PREFIX, PrivateStreams
from exchanges.backpack.sim_wire import HTTP_ERROR_CODES, MAKER_FEE, REJECT_CODES, TAKER_FEE, ms, s
from exchanges.backpack.sim_wire import error as _error
from exchanges.sim import params as prm
from exchanges.sim.admin import admin_handler
from exchanges.sim.engine import RejectKind, SimAccount, SimEngine, SimMarket, SimOrder, SimRejectError
from exchanges.sim.faults import InjectedHttpError
from exchanges.sim.http import Request, Response, SimHttpServer
from exchanges.sim.price import PriceSource
from exchanges.sim.venue import SimVenue
from exchanges.sim.ws import SimWsServer

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


def _expected_message(instruction: str, params: Mapping[str, Any] | list[Any], timestamp: str, window: str) -> str:
    """The text the venue verifies (written from the spec, separately from the client's signer); a batch (a
    list) signs each order as its own instruction, in array order."""

    def render(v: Any) -> str:
        if v is True:
            return "true"
        if v is False:
            return "false"
        return str(v)

    def one(item: Mapping[str, Any]) -> str:
        pairs = "&".join(f"{k}={render(item[k])}" for k in sorted(item))
        return f"instruction={instruction}" + (f"&{pairs}" if pairs else "")

    if isinstance(params, list):
        head = "&".join(one(item) if isinstance(item, Mapping) else f"instruction={instruction}" for item in params)
    else:
        head = one(params)
    return f"{head}&timestamp={timestamp}&window={window}"


class BackpackSim(SimVenue, BackpackPublicApi, BackpackPrivateApi, BackpackHistoryApi):
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
        liquidation_in_list: bool = False,
    ) -> None:
        self.liquidation_in_list = liquidation_in_list
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
                                  self._injected_error, port=port, not_found=self._not_found)  # fmt: skip
        private = PrivateStreams(self.engine, self.clock, self._keys, lambda: self.ws)
        self.streams = BackpackStreams(
            self.engine,
            self.clock,
            lambda: self.ws,
            private,
            lambda symbol: self._ticker_json(symbol, timedelta(days=1)),
            self._tape,
        )
        self.ws = SimWsServer(on_frame=self.streams.on_frame, port=ws_port,
                              is_private=lambda key: key.startswith(PRIVATE_PREFIX))  # fmt: skip
        self.engine.order_listeners.append(self._on_order)
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

    def _authenticate(
        self, request: Request, instruction: str, params: Mapping[str, Any] | list[Any]
    ) -> SimAccount | Response:
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
        now_ms = ms(self.clock.now())
        # Expired requests are refused (spec §4: observed 401 "Request has expired"; its JSON code is
        # UNCERTAIN, INVALID_CLIENT_REQUEST is our choice). Far-future timestamps are refused the same way.
        if now_ms > int(timestamp) + int(window) or int(timestamp) > now_ms + int(window):
            return _error(401, "INVALID_CLIENT_REQUEST", "Request has expired")
        account = self._keys.get(api_key)
        try:
            verify_key = VerifyKey(base64.b64decode(api_key, validate=True))
            message = _expected_message(instruction, params, timestamp, window)
            verify_key.verify(message.encode(), base64.b64decode(signature, validate=True))
        except (BadSignatureError, ValueError, TypeError, AttributeError):
            return _error(401, "INVALID_SIGNATURE", "Invalid signature")
        if account is None:
            return _error(401, "UNAUTHORIZED", "Unknown API key")
        return account

    def _signed(self, request: Request, instruction: str) -> tuple[SimAccount, Any] | Response:
        params: dict[str, Any] | list[Any]
        if request.method in ("GET",):
            params = dict(request.query)
        else:
            try:
                body = request.json()
            except (ValueError, UnicodeDecodeError):
                return _error(400, "INVALID_CLIENT_REQUEST", "parse request payload error: invalid JSON")
            if body is None:
                body = {}
            batch = request.path == "/api/v1/orders" and request.method == "POST"
            if not isinstance(body, list if batch else dict):
                return _error(400, "INVALID_CLIENT_REQUEST", "parse request payload error: wrong JSON type")
            params = body
        account = self._authenticate(request, instruction, params)
        if isinstance(account, Response):
            return account
        return account, params

    def _injected_error(self, injected: InjectedHttpError) -> Response:
        code = HTTP_ERROR_CODES.get(injected.status, "SERVER_ERROR")
        response = _error(injected.status, code, f"Simulated HTTP {injected.status}")
        if injected.retry_after is not None:
            response.headers["Retry-After"] = str(injected.retry_after)
        return response

    def _reject(self, exc: SimRejectError) -> Response:
        if exc.kind is RejectKind.INJECTED:
            return _error(400, str(exc.venue_code), exc.message)
        status, code = REJECT_CODES[exc.kind]
        return _error(status, code, exc.message)

    @classmethod
    def operations(cls) -> dict[tuple[str, str], str | None]:
        """Every (method, path) served, with its signing instruction (None: public); no server is started."""
        bare = cls.__new__(cls)  # the route tables are built from bound methods alone: nothing runs
        signed = bare.private_routes() | bare.history_routes()
        return dict.fromkeys(bare.public_routes()) | {key: entry[0] for key, entry in signed.items()}

    def _not_found(self, request: Request) -> Response:
        if any(path == request.path for _, path in self.http_routes):
            return _error(405, "INVALID_CLIENT_REQUEST", f"{request.method} is not allowed on {request.path}")
        return _error(404, "RESOURCE_NOT_FOUND", f"No route for {request.path}")

    # ---- routes -----------------------------------------------------------------------------------------

    def _routes(self) -> dict[tuple[str, str], Any]:
        routes: dict[tuple[str, str], Any] = {key: self.public(h) for key, h in self.public_routes().items()}
        for key, (instruction, handler) in (self.private_routes() | self.history_routes()).items():
            routes[key] = self._guarded(instruction, handler)
        self.http_routes = set(routes)
        return routes

    def _guarded(self, instruction: str, handler: Any) -> Any:
        def run(request: Request) -> Response:
            auth = self._signed(request, instruction)
            if isinstance(auth, Response):
                return auth
            account, params = auth
            try:
                with self.engine.lock:
                    self.engine.tick()
                    return handler(account, params)
            except SimRejectError as exc:
                return self._reject(exc)
            except prm.ParamError as exc:
                code = "INVALID_SYMBOL" if str(exc).startswith("Unknown symbol") else "INVALID_CLIENT_REQUEST"
                return _error(400, code, str(exc))
            except (KeyError, ValueError, ArithmeticError) as exc:
                return _error(400, "INVALID_CLIENT_REQUEST", f"Invalid request: {exc}")

        return run

    # ---- websocket --------------------------------------------------------------------------------------

    def _on_order(self, account: SimAccount, order: SimOrder) -> None:
        """The engine's order listener (under its lock, before the REST reply): private events, then trades."""
        fills = self.streams.private.on_order(account, order)
        self.streams.on_fills(order, fills)

    def resend_all(self) -> None:
        """Forget what was sent, so the next publish sends every stream again (new subscribers)."""
        super().resend_all()
        self.streams.resend_all()

    def publish_once(self) -> int:
        """Push bookTicker and markPrice for every market whose values changed, the scheduled streams where due,
        and reordered private events that waited too long; returns frames sent."""
        with self._publish_lock:
            sent = self._publish_changes() + self.streams.publish_scheduled()
        self.streams.private.release_held()
        return sent

    def _publish_changes(self) -> int:
        sent = 0
        now_us = int(self.clock.now().timestamp() * 1_000_000)
        for symbol in self.engine.markets:
            with self.engine.lock:
                self.engine.tick()
                bids, asks = self.engine.book(symbol)
                mark = self.mark_price_json(symbol)
            top = (bids[0], asks[0])
            if self._last_sent.get(f"bookTicker.{symbol}") != top:
                self._last_sent[f"bookTicker.{symbol}"] = top
                self._update_id += 1
                data = {"e": "bookTicker", "E": now_us, "s": symbol, "a": s(asks[0][0]), "A": s(asks[0][1]),
                        "b": s(bids[0][0]), "B": s(bids[0][1]), "u": str(self._update_id), "T": now_us}  # fmt: skip
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
