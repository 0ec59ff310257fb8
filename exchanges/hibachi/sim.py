"""A Hibachi exchange on loopback: both hosts' paths, JSON shapes, status codes, error bodies and signatures.

Deliberately independent of `exchanges.hibachi.signing` and `.parse` (payloads are rebuilt here with
integer/Fraction arithmetic): a mistake shared by client and simulator would otherwise pass both.

Error codes: 2 (bad signature), 3 (not found) and 4 (invalid input) are the venue's (spec §4). Codes for a
bad API key (1) and the wording of margin and nonce errors are our choice; the spec records none.

Websockets (one port): /ws/market, /ws/account and /ws/trade, see sim_streams.py; the account stream's
events come from the engine's order listeners (sim_streams_events.py).

Standalone: `python -m exchanges.hibachi.sim --port 0 [--seed N]` prints one JSON line with its URLs and the
paper account's credentials (usable with either key type), then serves until killed.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import json
import random
import struct
import sys
import threading
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from coincurve import PrivateKey

from core.clock import Clock, SystemClock
from exchanges.hibachi.sim_account import CapitalMove, HibachiAccountApi
from exchanges.hibachi.sim_account_ws import LISTEN_KEY_TTL_S, AccountStreams
from exchanges.hibachi.sim_market_ws import MarketStreams
from exchanges.hibachi.sim_orders import HibachiOrderApi
from exchanges.hibachi.sim_public import HibachiPublicApi
from exchanges.hibachi.sim_streams import HibachiWsServer
from exchanges.hibachi.sim_streams_events import AccountEvents
from exchanges.hibachi.sim_trade_ws import Handler, TradeSessions
from exchanges.hibachi.sim_wire import (
    DEFAULT_CONTRACTS,
    MAKER_FEE,
    NONCE_WINDOW_S,
    TAKER_FEE,
    SimContract,
    SimCredentials,
    us,
)
from exchanges.hibachi.sim_wire import error as _error
from exchanges.sim import params as prm
from exchanges.sim.admin import admin_handler
from exchanges.sim.engine import RejectKind, SimAccount, SimEngine, SimRejectError
from exchanges.sim.faults import InjectedHttpError
from exchanges.sim.http import Request, Response, SimHttpServer
from exchanges.sim.price import PriceSource
from exchanges.sim.venue import SimVenue

__all__ = ["DEFAULT_CONTRACTS", "HibachiSim", "SimContract", "SimCredentials"]

# Builds the venue's engine from SimEngine's arguments (SimEngine itself, or a live-priced one).
EngineFactory = Callable[..., SimEngine]


class HibachiSim(SimVenue, HibachiPublicApi, HibachiOrderApi, HibachiAccountApi):
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
        listen_key_ttl_s: float = LISTEN_KEY_TTL_S,
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
        self.capital_moves: dict[int, list[CapitalMove]] = {}
        self._rng = random.Random(seed)
        self.ws = HibachiWsServer(self._credentials, port=ws_port)
        self.account_streams = AccountStreams(self.engine, self.clock, listen_key_ttl_s)
        self.market_streams = MarketStreams(self.engine, self.contracts, self.ws.publish, self.ws.subscribers)
        self.trade_sessions = TradeSessions(self)
        self.ws.attach(self.market_streams, self.account_streams, self.trade_sessions)
        self.account_events = AccountEvents(
            self.engine, self._credentials_of, self.order_json, self.wire_status, self.account_streams.deliver
        )
        self.engine.order_listeners.append(self.account_events.on_order)
        self.engine.faults.account_stream_droppers.append(self.account_streams.drop_all)
        self.paper = self.add_account("paper", collateral)
        self.http = SimHttpServer(self._routes(), admin_handler(self.engine, lambda: self.ws), self.engine.faults,
                                  self._injected_error, port=port, not_found=self._not_found)  # fmt: skip
        self._init_publisher("hibachi", publish_interval_s)

    # ---- lifecycle --------------------------------------------------------------------------------------

    def add_account(self, name: str, collateral: Decimal, rng: random.Random | None = None) -> SimCredentials:
        """Create a funded account with an API key, an HMAC secret and a secp256k1 key (all seeded: from `rng`
        when given, so a caller can make one account's keys independent of the others')."""
        rng = rng or self._rng
        key = PrivateKey(bytes(rng.getrandbits(8) for _ in range(32)))
        account_id = rng.randint(100, 99999)
        while account_id in self._accounts:  # ids are drawn: two accounts must not share one
            account_id = rng.randint(100, 99999)
        creds = SimCredentials(
            account_id=account_id,
            api_key=base64.urlsafe_b64encode(bytes(rng.getrandbits(8) for _ in range(24))).decode(),
            hmac_secret=base64.b64encode(bytes(rng.getrandbits(8) for _ in range(32))).decode(),  # 44 chars
            private_key="0x" + key.secret.hex(),
            public_key=key.public_key.format(compressed=False),
            account=self.engine.open_account(name, collateral),
        )
        self._accounts[creds.account_id] = creds
        self.account_events.track(creds.account)
        return creds

    def credentials_of(self, name: str) -> SimCredentials | None:
        """The credentials of the engine account called `name`, if the wire layer knows it."""
        account = self.engine.accounts.get(name)
        return None if account is None else self._credentials_of(account)

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

    def ws_account_url(self, account_id: int | None = None) -> str:
        """Account websocket of an account (the paper account by default); send `Authorization: <apiKey>`."""
        return f"ws://127.0.0.1:{self.ws.port}/ws/account?accountId={account_id or self.paper.account_id}"

    def ws_trade_url(self, account_id: int | None = None) -> str:
        """Trade websocket of an account (the paper account by default); send `Authorization: <apiKey>`."""
        return f"ws://127.0.0.1:{self.ws.port}/ws/trade?accountId={account_id or self.paper.account_id}"

    def endpoints(self) -> dict[str, Any]:
        """What the standalone command prints."""
        return {
            "api": self.api_url,
            "data_api": self.data_api_url,
            "ws_market": self.ws_market_url,
            "ws_account": f"ws://127.0.0.1:{self.ws.port}/ws/account",  # a client adds ?accountId=
            "api_key": self.paper.api_key,
            "account_id": self.paper.account_id,
            "hmac_secret": self.paper.hmac_secret,
            "private_key": self.paper.private_key,
            "admin": f"{self.api_url}/_sim",
        }

    # ---- auth -------------------------------------------------------------------------------------------

    def _identify(self, request: Request, params: Mapping[str, Any]) -> SimCredentials | Response:
        return self._credentials(params.get("accountId", ""), request.headers.get("authorization", ""))

    def _credentials(self, raw_id: Any, api_key: str) -> SimCredentials | Response:
        """The account that id and API key name, or the venue's refusal (REST and websockets alike)."""
        try:
            account_id = int(raw_id)  # int("") fails as a missing id does
        except (TypeError, ValueError):
            return _error(400, 4, "Missing accountId")
        creds = self._accounts.get(account_id)
        if creds is None or not hmac.compare_digest(api_key.encode(), creds.api_key.encode()):
            return _error(401, 1, "Invalid API key for this account")
        return creds

    def _credentials_of(self, account: SimAccount) -> SimCredentials | None:
        return next((c for c in self._accounts.values() if c.account is account), None)

    def _check_signed(
        self, creds: SimCredentials, payload: bytes, signature: Any, nonce: int | None
    ) -> Response | None:
        """Signature first (code 2), then the nonce's window and uniqueness; records the nonce if all pass."""
        if not creds.signature_ok(payload, signature):
            return _error(400, 2, "Invalid signature")
        if nonce is None:
            return None
        nonce_us = nonce if nonce >= 10**15 else nonce * 1000  # ms or µs (spec §4)
        now_us = us(self.clock.now())
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
        routes: dict[tuple[str, str], Any] = {k: self.public(h) for k, h in self.public_routes().items()}
        routes.update({k: self._private(h) for k, h in (self.order_routes() | self.account_routes()).items()})
        self.http_routes = set(routes)
        return routes

    @classmethod
    def operations(cls) -> dict[tuple[str, str], bool]:
        """Every (method, path) served, True where it needs the account's API key; no server is started."""
        bare = cls.__new__(cls)  # the route tables are built from bound methods alone: nothing runs
        private = bare.order_routes() | bare.account_routes()
        return dict.fromkeys(bare.public_routes(), False) | dict.fromkeys(private, True)

    def _not_found(self, request: Request) -> Response:
        if any(path == request.path for _, path in self.http_routes):
            return _error(405, 4, f"{request.method} is not allowed on {request.path}")
        return _error(404, 3, f"No route for {request.path}")

    def _private(self, handler: Any) -> Any:
        def run(request: Request) -> Response:
            if request.method == "GET":
                params: dict[str, Any] = dict(request.query)
            else:
                try:
                    params = request.json() or {}
                except (ValueError, UnicodeDecodeError):
                    return _error(400, 4, "Invalid JSON body")
                if not isinstance(params, dict):
                    return _error(400, 4, "Body must be a JSON object")
            creds = self._identify(request, params)
            if isinstance(creds, Response):
                return creds
            return self.run_private(handler, creds, params)

        return run

    def run_private(self, handler: Handler, creds: SimCredentials, params: dict[str, Any]) -> Response:
        """Run an account handler after the market ticks; refusals become the venue's error replies."""
        try:
            with self.engine.lock:
                self.engine.tick()
                return handler(creds, params)
        except SimRejectError as exc:
            return self._reject(exc)
        except prm.ParamError as exc:
            return _error(400, 4, str(exc))
        except (KeyError, ValueError, ArithmeticError, TypeError, struct.error) as exc:
            return _error(400, 4, f"Invalid input: {exc}")

    # ---- market websocket -------------------------------------------------------------------------------

    def publish_once(self) -> int:
        """Push every market topic whose values changed; returns frames sent."""
        with self._publish_lock:
            return self.market_streams.publish_once()

    def resend_all(self) -> None:
        """The next publish sends every stream again (a new subscriber)."""
        super().resend_all()
        self.market_streams.resend_all()


def main(argv: list[str] | None = None) -> int:
    """Run the simulator until killed; first stdout line is the JSON description."""
    parser = argparse.ArgumentParser(description="Hibachi exchange simulator on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="REST port for both hosts (0: any free port)")
    parser.add_argument("--ws-port", type=int, default=0, help="websocket port, all three paths (0: any free port)")
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
