"""Hibachi simulator: the public market-data routes (data-api host), each checking its parameters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from core.clock import Clock
from core.domain import Side
from exchanges.hibachi.sim_wire import MAKER_FEE, TAKER_FEE, SimContract, error, s, us
from exchanges.sim import params as prm
from exchanges.sim.engine import SimEngine, SimFill
from exchanges.sim.http import Request, Response

KLINE_INTERVALS = {"1min": 60, "5min": 300, "15min": 900, "1h": 3600, "4h": 14400, "1d": 86400, "1w": 604800}
# Every fee field the definition's example shows; instantWithdrawalFees is [[amount above, fee rate]] as numbers.
FEE_CONFIG: dict[str, Any] = {
    "depositFees": "0.000237", "withdrawalFees": "0.000237", "transferFeeRate": "0.00010000",
    "tradeMakerFeeRate": format(MAKER_FEE, ".8f"), "tradeTakerFeeRate": format(TAKER_FEE, ".8f"),
    "instantWithdrawDstPublicKey": "00" * 64, "instantWithdrawalFees": [[1000, 0.005], [500, 0.01], [0, 0.02]],
}  # fmt: skip


class HibachiPublicApi:
    """Mixin for HibachiSim: handlers take the Request and answer a Response."""

    engine: SimEngine
    clock: Clock
    contracts: dict[str, SimContract]
    status: str

    def public_routes(self) -> dict[tuple[str, str], Callable[[Request], Response]]:
        """(method, path) -> handler for every public read."""
        return {
            ("GET", "/market/exchange-info"): self._exchange_info,
            ("GET", "/market/inventory"): self._inventory,
            ("GET", "/market/data/prices"): self._prices,
            ("GET", "/market/data/stats"): self._stats,
            ("GET", "/market/data/trades"): self._market_trades,
            ("GET", "/market/data/klines"): self._klines,
            ("GET", "/market/data/open-interest"): self._open_interest,
            ("GET", "/market/data/orderbook"): self._orderbook,
            ("GET", "/market/data/funding-rates"): self._funding_rates,
            ("GET", "/exchange/utc-timestamp"): lambda _r: Response(200, {"timestampMs": us(self.clock.now()) // 1000}),
        }

    def public(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        """Run a public handler after the market ticks; a bad parameter answers 400 with Hibachi's error body."""

        def run(request: Request) -> Response:
            try:
                with self.engine.lock:
                    self.engine.tick()
                    return handler(request)
            except prm.ParamError as exc:
                return error(400, 4, str(exc))

        return run

    def _symbol(self, request: Request) -> str:
        symbol = prm.text(request.query, "symbol", required=True)
        if symbol not in self.contracts:
            raise prm.ParamError(f"Invalid symbol: {symbol}")
        return symbol

    # ---- reference data ---------------------------------------------------------------------------------

    def contract_json(self, c: SimContract) -> dict[str, Any]:
        """A futureContracts entry."""
        m = c.market
        return {
            "id": c.id, "symbol": m.symbol, "displayName": f"{m.asset}/USDT Perps", "underlyingSymbol": m.asset,
            "settlementSymbol": "USDT", "underlyingDecimals": c.underlying_decimals,
            "settlementDecimals": c.settlement_decimals, "tickSize": s(m.tick_size), "stepSize": s(m.step_size),
            "minOrderSize": s(m.min_quantity), "minNotional": s(m.min_notional),
            "orderbookGranularities": list(c.granularities), "initialMarginRate": s(m.initial_margin_rate),
            "maintenanceMarginRate": s(m.maintenance_margin_rate), "status": "LIVE", "live": True,
            "marketCreationTimestamp": "1727701319.73488",
        }  # fmt: skip

    def _exchange_info(self, _request: Request) -> Response:
        body: dict[str, Any] = {
            "status": self.status,
            "maintenanceWindow": [],
            "feeConfig": dict(FEE_CONFIG),
            "instantWithdrawalLimit": {"lowerLimit": "0", "upperLimit": "1000"},
            "futureContracts": [self.contract_json(c) for c in self.contracts.values()],
        }
        if self.status != "NORMAL":
            now = self.clock.now().timestamp()
            body["currentMaintenanceWindow"] = {"begin": now - 60, "end": now + 3600, "note": "simulated maintenance"}
        return Response(200, body)

    def _inventory(self, request: Request) -> Response:
        markets = []
        for symbol, c in self.contracts.items():
            mark = s(self.engine.mark(symbol))
            day = self._window(symbol, timedelta(days=1))
            markets.append({"contract": self.contract_json(c), "info": {
                "category": None, "tags": [], "markPrice": mark,
                "price24hAgo": s(day[0].price) if day else mark, "priceLatest": s(day[-1].price) if day else mark,
            }})  # fmt: skip
        body = self._exchange_info(request).body
        return Response(200, {"feeConfig": body["feeConfig"], "markets": markets, "tradingTiers": []})

    # ---- prices -----------------------------------------------------------------------------------------

    def prices_json(self, symbol: str) -> dict[str, Any]:
        """GET /market/data/prices for one contract."""
        bids, asks = self.engine.book(symbol)
        mark = self.engine.mark(symbol)
        tape = self._tape(symbol)
        return {
            "symbol": symbol, "markPrice": s(mark), "spotPrice": s(mark),
            "tradePrice": s(tape[-1].price) if tape else s(mark),
            "bidPrice": s(bids[0][0]), "askPrice": s(asks[0][0]),
            "fundingRateEstimation": {
                "estimatedFundingRate": s(self.engine.markets[symbol].funding_rate),
                "nextFundingTimestamp": self.engine.next_funding_ts(symbol),
            },
        }  # fmt: skip

    def _prices(self, request: Request) -> Response:
        return Response(200, self.prices_json(self._symbol(request)))

    def _orderbook(self, request: Request) -> Response:
        symbol = self._symbol(request)
        depth = prm.integer(request.query, "depth", default=5, low=1, high=100)
        granularity = prm.text(request.query, "granularity")
        if granularity is not None and granularity not in self.contracts[symbol].granularities:
            raise prm.ParamError(f"granularity must be one of {', '.join(self.contracts[symbol].granularities)}")
        bids, asks = self.engine.book(symbol)

        def side(levels: list[tuple[Decimal, Decimal]]) -> dict[str, Any]:
            levels = levels[:depth]
            return {
                "startPrice": s(levels[0][0]), "endPrice": s(levels[-1][0]),
                "levels": [{"price": s(p), "quantity": s(q)} for p, q in levels],
            }  # fmt: skip

        return Response(200, {"bid": side(bids), "ask": side(asks)})

    def _open_interest(self, request: Request) -> Response:
        symbol = self._symbol(request)
        longs = sum((p.quantity for a in self.engine.accounts.values()
                     for x, p in a.positions.items() if x == symbol and p.quantity > 0), Decimal(0))  # fmt: skip
        return Response(200, {"totalQuantity": s(longs)})

    def _funding_rates(self, request: Request) -> Response:
        symbol = self._symbol(request)
        # Seconds "with optional fractional part"; the end defaults to the server's time itself, not its whole
        # second, so a settlement earlier in the current second is already listed (spec: getFundingRates).
        now = Decimal(str(self.clock.now().timestamp()))
        start_arg, end_arg = prm.decimal(request.query, "startTime"), prm.decimal(request.query, "endTime")
        start = now - 7 * 86400 if start_arg is None else start_arg
        end = now if end_arg is None else end_arg
        limit = prm.integer(request.query, "limit", default=50, low=1, high=100)
        offset = prm.integer(request.query, "offset", default=0)
        rows = [r for r in reversed(self.engine.funding_log)
                if r.symbol == symbol and start <= Decimal(str(r.ts.timestamp())) <= end]  # fmt: skip
        return Response(200, {"data": [{
            "contractId": self.contracts[symbol].id, "fundingTimestamp": int(r.ts.timestamp()),
            "fundingRate": s(r.rate), "indexPrice": s(self.engine.mark(symbol)),
        } for r in prm.page(rows, offset, limit)]})  # fmt: skip

    # ---- trades -----------------------------------------------------------------------------------------

    def _tape(self, symbol: str) -> list[SimFill]:
        """Every fill on `symbol` across accounts, oldest first: the venue's public trade tape."""
        fills = [f for a in self.engine.accounts.values() for f in a.fills if f.symbol == symbol]
        return sorted(fills, key=lambda f: f.trade_id)

    def _window(self, symbol: str, span: timedelta) -> list[SimFill]:
        since = self.clock.now() - span
        return [f for f in self._tape(symbol) if f.ts >= since]

    def _market_trades(self, request: Request) -> Response:
        tape = self._tape(self._symbol(request))[-100:]
        return Response(200, {"trades": [{
            "price": s(f.price), "quantity": s(f.quantity), "timestamp": int(f.ts.timestamp()),
            # A maker fill's taker traded the other way.
            "takerSide": "Buy" if (f.side is Side.LONG) != f.is_maker else "Sell",
        } for f in reversed(tape)]})  # fmt: skip

    def _stats(self, request: Request) -> Response:
        symbol = self._symbol(request)
        day = self._window(symbol, timedelta(days=1))
        prices = [f.price for f in day] or [self.engine.mark(symbol)]
        return Response(200, {
            "symbol": symbol, "high24h": s(max(prices)), "low24h": s(min(prices)),
            "volume24h": s(sum((f.quantity for f in day), Decimal(0))),
        })  # fmt: skip

    def _klines(self, request: Request) -> Response:
        symbol = self._symbol(request)
        interval = prm.choice(request.query, "interval", KLINE_INTERVALS, default="1min")
        step = KLINE_INTERVALS[interval]
        now_ms = us(self.clock.now()) // 1000
        to_ms = prm.integer(request.query, "toMs", default=now_ms)
        from_ms = prm.integer(request.query, "fromMs", default=to_ms - 100 * step * 1000)
        tape = self._tape(symbol)
        mark = self.engine.mark(symbol)
        first = from_ms // 1000 - from_ms // 1000 % step
        out = []
        for open_s in range(first, min(to_ms, now_ms) // 1000 + 1, step)[-1000:]:
            inside = [f.price for f in tape if open_s <= f.ts.timestamp() < open_s + step]
            notional = sum((f.price * f.quantity for f in tape if open_s <= f.ts.timestamp() < open_s + step),
                           Decimal(0))  # fmt: skip
            prices = inside or [mark]
            out.append({
                "open": s(prices[0]), "high": s(max(prices)), "low": s(min(prices)), "close": s(prices[-1]),
                "volumeNotional": s(notional), "interval": interval, "timestamp": open_s,
            })  # fmt: skip
        return Response(200, {"klines": out})
