"""Backpack simulator: the public (unsigned) market-data routes, each checking its parameters as documented."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, overload

from core.clock import Clock
from core.domain import Side
from exchanges.backpack.sim_streams_wire import us
from exchanges.backpack.sim_wire import (
    KLINE_INTERVALS,
    MARKET_TYPES,
    error,
    iso,
    margin_function,
    market_json,
    ms,
    s,
)
from exchanges.sim import params as prm
from exchanges.sim.engine import SimEngine, SimFill
from exchanges.sim.http import Request, Response

if TYPE_CHECKING:
    from exchanges.backpack.sim_streams import BackpackStreams

DEPTH_LIMITS = ("5", "10", "20", "50", "100", "500", "1000")
TICKER_WINDOWS = {"1d": timedelta(days=1), "1w": timedelta(weeks=1)}


class BackpackPublicApi:
    """Mixin for BackpackSim: handlers take the Request and answer a Response."""

    engine: SimEngine
    clock: Clock
    streams: BackpackStreams

    def public_routes(self) -> dict[tuple[str, str], Callable[[Request], Response]]:
        """(method, path) -> handler for every public read."""
        return {
            ("GET", "/api/v1/assets"): self._assets,
            ("GET", "/api/v1/collateral"): self._collateral_parameters,
            ("GET", "/api/v1/markets"): self._markets,
            ("GET", "/api/v1/market"): self._market,
            ("GET", "/api/v1/depth"): self._depth,
            ("GET", "/api/v1/markPrices"): self._mark_prices,
            ("GET", "/api/v1/openInterest"): self._open_interest,
            ("GET", "/api/v1/fundingRates"): self._funding_rates,
            ("GET", "/api/v1/ticker"): self._ticker,
            ("GET", "/api/v1/tickers"): self._tickers,
            ("GET", "/api/v1/trades"): self._recent_trades,
            ("GET", "/api/v1/trades/history"): self._trade_history,
            ("GET", "/api/v1/klines"): self._klines,
            ("GET", "/api/v1/securities"): lambda _r: Response(200, []),  # a perp venue lists no securities
            ("GET", "/api/v1/status"): lambda _r: Response(200, {"status": "Ok"}),
            ("GET", "/api/v1/ping"): lambda _r: Response(200, "pong"),
            ("GET", "/api/v1/time"): lambda _r: Response(200, str(ms(self.clock.now()))),
        }

    @overload
    def _symbol(self, request: Request, *, required: Literal[True] = True) -> str: ...
    @overload
    def _symbol(self, request: Request, *, required: bool) -> str | None: ...
    def _symbol(self, request: Request, *, required: bool = True) -> str | None:
        symbol = prm.text(request.query, "symbol", required=required)
        if symbol is not None and symbol not in self.engine.markets:
            raise prm.ParamError(f"Unknown symbol {symbol}")
        return symbol

    def public(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        """Run a public handler; a bad parameter answers 400 with Backpack's error body."""

        def run(request: Request) -> Response:
            try:
                with self.engine.lock:
                    return handler(request)
            except prm.ParamError as exc:
                code = "INVALID_SYMBOL" if str(exc).startswith("Unknown symbol") else "INVALID_CLIENT_REQUEST"
                return error(400, code, str(exc))

        return run

    # ---- reference data ---------------------------------------------------------------------------------

    def _assets(self, _request: Request) -> Response:
        assets = ["USDC", *sorted({m.asset for m in self.engine.markets.values()})]
        return Response(200, [{
            "symbol": a, "displayName": a, "tokens": [{
                "displayName": a, "blockchain": "Solana", "depositEnabled": True, "withdrawEnabled": True,
                "minimumDeposit": "0", "minimumWithdrawal": "0", "withdrawalFee": "0",
            }],
        } for a in assets])  # fmt: skip

    def _collateral_parameters(self, _request: Request) -> Response:
        out = [{"symbol": "USDC", "imfFunction": margin_function(Decimal("0.02"), "0.00006"),
                "mmfFunction": margin_function(Decimal("0.0125"), "0.00004"),
                "haircutFunction": {"weight": "1", "kind": {"type": "identity"}}}]  # fmt: skip
        return Response(200, out)

    def _markets(self, request: Request) -> Response:
        kinds = prm.choices(request.query_all.get("marketType", []), "marketType", MARKET_TYPES)
        if kinds and "PERP" not in kinds:
            return Response(200, [])
        return Response(200, [market_json(m) for m in self.engine.markets.values()])

    def _market(self, request: Request) -> Response:
        symbol = self._symbol(request)
        return Response(200, market_json(self.engine.markets[symbol]))

    # ---- prices -----------------------------------------------------------------------------------------

    def mark_price_json(self, symbol: str) -> dict[str, Any]:
        """One entry of GET /api/v1/markPrices (also the markPrice stream's source)."""
        m = self.engine.markets[symbol]
        return {
            "symbol": symbol,
            "markPrice": s(self.engine.mark(symbol)),
            "indexPrice": s(self.engine.mark(symbol)),
            "fundingRate": s(m.funding_rate),
            "nextFundingTimestamp": self.engine.next_funding_ts(symbol) * 1000,
        }

    def _mark_prices(self, request: Request) -> Response:
        symbol = self._symbol(request, required=False)
        kind = prm.choice(request.query, "marketType", MARKET_TYPES)
        if kind not in (None, "PERP"):
            return Response(200, [])
        symbols = [symbol] if symbol else list(self.engine.markets)
        return Response(200, [self.mark_price_json(x) for x in symbols])

    def _depth(self, request: Request) -> Response:
        """GET /api/v1/depth from the depth stream's book, so that `lastUpdateId` lines up with its ids."""
        symbol = self._symbol(request)
        limit = int(prm.choice(request.query, "limit", DEPTH_LIMITS, default="1000"))
        book = self.streams.depth_book(symbol)
        return Response(200, {
            # Backpack does not document the side order; ascending asks and descending bids here.
            "asks": [[s(p), s(q)] for p, q in sorted(book.asks.items())[:limit]],
            "bids": [[s(p), s(q)] for p, q in sorted(book.bids.items(), reverse=True)[:limit]],
            "lastUpdateId": str(book.update_id),
            "timestamp": us(self.clock.now()),
        })  # fmt: skip

    def _open_interest(self, request: Request) -> Response:
        symbol = self._symbol(request, required=False)
        now = ms(self.clock.now())
        out = []
        for sym in [symbol] if symbol else list(self.engine.markets):
            longs = sum((p.quantity for a in self.engine.accounts.values()
                         for x, p in a.positions.items() if x == sym and p.quantity > 0), Decimal(0))  # fmt: skip
            out.append({"symbol": sym, "openInterest": s(longs), "timestamp": now})
        return Response(200, out)

    def _funding_rates(self, request: Request) -> Response:
        symbol = self._symbol(request)
        limit = prm.integer(request.query, "limit", default=100, low=1, high=1000)
        offset = prm.integer(request.query, "offset", default=0)
        rows = [r for r in reversed(self.engine.funding_log) if r.symbol == symbol]
        return Response(200, [
            {"symbol": r.symbol, "fundingRate": s(r.rate), "intervalEndTimestamp": iso(r.ts)}
            for r in prm.page(rows, offset, limit)
        ])  # fmt: skip

    # ---- trades -----------------------------------------------------------------------------------------

    def _tape(self, symbol: str) -> list[SimFill]:
        """Every fill on `symbol` across accounts, oldest first: the venue's public trade tape."""
        fills = [f for a in self.engine.accounts.values() for f in a.fills if f.symbol == symbol]
        return sorted(fills, key=lambda f: f.trade_id)

    @staticmethod
    def _trade_json(f: SimFill) -> dict[str, Any]:
        return {
            "id": f.trade_id, "price": s(f.price), "quantity": s(f.quantity), "quoteQuantity": s(f.price * f.quantity),
            "timestamp": ms(f.ts), "isBuyerMaker": (f.side is Side.LONG) == f.is_maker,
        }  # fmt: skip

    def _recent_trades(self, request: Request) -> Response:
        symbol = self._symbol(request)
        limit = prm.integer(request.query, "limit", default=100, low=1, high=1000)
        tape = self._tape(symbol)
        return Response(200, [self._trade_json(f) for f in tape[-limit:]])

    def _trade_history(self, request: Request) -> Response:
        symbol = self._symbol(request)
        limit = prm.integer(request.query, "limit", default=100, low=1, high=1000)
        offset = prm.integer(request.query, "offset", default=0)
        tape = list(reversed(self._tape(symbol)))
        return Response(200, [self._trade_json(f) for f in prm.page(tape, offset, limit)])

    def _ticker_json(self, symbol: str, window: timedelta) -> dict[str, str]:
        since = self.clock.now() - window
        fills = [f for f in self._tape(symbol) if f.ts >= since]
        mark = self.engine.mark(symbol)
        prices = [f.price for f in fills] or [mark]
        first, last = prices[0], prices[-1]
        change = last - first
        return {
            "symbol": symbol, "firstPrice": s(first), "lastPrice": s(last), "high": s(max(prices)),
            "low": s(min(prices)), "priceChange": s(change), "priceChangePercent": s(change / first),
            "volume": s(sum((f.quantity for f in fills), Decimal(0))),
            "quoteVolume": s(sum((f.quantity * f.price for f in fills), Decimal(0))), "trades": str(len(fills)),
        }  # fmt: skip

    def _ticker(self, request: Request) -> Response:
        symbol = self._symbol(request)
        window = prm.choice(request.query, "interval", TICKER_WINDOWS, default="1d")
        return Response(200, self._ticker_json(symbol, TICKER_WINDOWS[window]))

    def _tickers(self, request: Request) -> Response:
        window = TICKER_WINDOWS[prm.choice(request.query, "interval", TICKER_WINDOWS, default="1d")]
        return Response(200, [self._ticker_json(sym, window) for sym in self.engine.markets])

    def _klines(self, request: Request) -> Response:
        symbol = self._symbol(request)
        interval = prm.choice(request.query, "interval", KLINE_INTERVALS)
        if interval is None:
            raise prm.ParamError("interval is required")
        step = KLINE_INTERVALS[interval]
        now_s = int(self.clock.now().timestamp())
        start = prm.integer(request.query, "startTime", required=True, high=now_s + 86400 * 366)
        end = prm.integer(request.query, "endTime", default=now_s, high=now_s + 86400 * 366)
        prm.choice(request.query, "priceType", ("Last", "Index", "Mark"))
        first = start - start % step
        fills = self._tape(symbol)
        out = []
        for open_s in range(first, min(end, now_s) + 1, step)[-1000:]:
            inside = [f for f in fills if open_s <= f.ts.timestamp() < open_s + step]
            candle: dict[str, str] = {
                "start": iso_s(open_s), "end": iso_s(open_s + step),
                "volume": s(sum((f.quantity for f in inside), Decimal(0))),
                "quoteVolume": s(sum((f.quantity * f.price for f in inside), Decimal(0))), "trades": str(len(inside)),
            }  # fmt: skip
            if inside:
                prices = [f.price for f in inside]
                candle |= {"open": s(prices[0]), "close": s(prices[-1]), "high": s(max(prices)), "low": s(min(prices))}
            out.append(candle)
        return Response(200, out)


def iso_s(epoch_s: int) -> str:
    """Epoch seconds as Backpack's naive 'YYYY-MM-DD HH:MM:SS' kline bound."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M:%S")
