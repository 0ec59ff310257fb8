"""Hibachi simulator: the market websocket (/ws/market): subscriptions per connection (with the orderbook's
depth and granularity), list_subscription, and publishing every topic of spec §5."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection

from core.domain import Side
from exchanges.hibachi.sim_account_ws import error_reply
from exchanges.hibachi.sim_public import KLINE_INTERVALS
from exchanges.hibachi.sim_wire import SimContract, s, us
from exchanges.sim.engine import SimEngine, SimFill

MARKET_TOPICS = ("mark_price", "spot_price", "ask_bid_price", "funding_rate_estimation", "trades", "klines",
                 "orderbook")  # fmt: skip
DEFAULT_DEPTH = 5  # as GET /market/data/orderbook
Levels = list[tuple[Decimal, Decimal]]


@dataclass
class _Book:
    """One connection's orderbook subscription: its parameters and the levels it was last sent."""

    depth: int
    granularity: str | None
    sent: dict[str, Levels] = field(default_factory=dict)


class MarketStreams:
    """Market-websocket state per connection; broadcast topics ride on the server's keyed publishing."""

    def __init__(
        self,
        engine: SimEngine,
        contracts: dict[str, SimContract],
        publish: Callable[[str, str], int],
        subscribers: Callable[[str], int],
    ) -> None:
        self._engine = engine
        self._contracts = contracts
        self._publish = publish
        self._subscribers = subscribers
        self._lock = threading.Lock()
        self._subs: dict[ServerConnection, dict[tuple[str, str], dict[str, Any]]] = {}
        self._books: dict[ServerConnection, dict[str, _Book]] = {}
        self._last: dict[str, tuple[Any, ...]] = {}
        self._trade_cursor = engine.next_trade_id

    # ---- requests ---------------------------------------------------------------------------------------

    def on_message(self, conn: ServerConnection, text: str) -> tuple[set[str], set[str], str | None]:
        """(keys added, keys removed, reply) for one frame; orderbook subscriptions are kept here, per connection."""
        try:
            msg = json.loads(text)
            method = msg["method"]
            request_id = msg.get("id")
            subs = [] if method == "list_subscription" else msg.get("parameters", {}).get("subscriptions", [])
        except (ValueError, KeyError, TypeError, AttributeError):
            return set(), set(), error_reply(None, 400, 4, "Invalid request")
        if not isinstance(subs, list) or not all(isinstance(x, dict) for x in subs):
            return set(), set(), error_reply(request_id, 400, 4, "subscriptions must be a list of objects")
        if method == "list_subscription":
            with self._lock:
                listed = [{"symbol": sym, "topic": topic, **extra}
                          for (topic, sym), extra in self._subs.get(conn, {}).items()]  # fmt: skip
            return set(), set(), json.dumps({"id": request_id, "method": "list_subscription", "status": 200,
                                             "result": {"subscriptions": listed}})  # fmt: skip
        if method not in ("subscribe", "unsubscribe"):
            return set(), set(), error_reply(request_id, 400, 4, f"Unsupported method {method!r}")
        added: set[str] = set()
        removed: set[str] = set()
        problems: list[str] = []
        for sub in subs:
            checked = self._check(sub)
            if isinstance(checked, str):
                problems.append(checked)
                continue
            topic, symbol, extra = checked
            key = _key(topic, symbol, extra)
            with self._lock:
                mine = self._subs.setdefault(conn, {})
                old = mine.pop((topic, symbol), None)
                if old is not None and topic != "orderbook":
                    removed.add(_key(topic, symbol, old))
                if method == "subscribe":
                    mine[(topic, symbol)] = extra
                if topic == "orderbook":
                    self._subscribe_book(conn, symbol, extra if method == "subscribe" else None)
                elif method == "subscribe":
                    added.add(key)
        removed -= added
        if problems:  # subscribing gets no reply (spec §5); a bad entry does
            return added, removed, error_reply(request_id, 400, 4, "; ".join(problems))
        return added, removed, None

    def _check(self, sub: dict[str, Any]) -> tuple[str, str, dict[str, Any]] | str:
        topic, symbol = sub.get("topic"), sub.get("symbol")
        if topic not in MARKET_TOPICS:
            return f"Unknown topic {topic!r}"
        if symbol not in self._contracts:
            return f"Unknown symbol {symbol!r}"
        extra: dict[str, Any] = {}
        if topic == "klines":
            interval = sub.get("interval", "1min")
            if interval not in KLINE_INTERVALS:
                return f"Invalid interval {interval!r}"
            extra["interval"] = interval
        if topic == "orderbook":
            depth, granularity = sub.get("depth", DEFAULT_DEPTH), sub.get("granularity")
            if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= 100:
                return "depth must be an integer in 1..100"
            allowed = self._contracts[symbol].granularities
            if granularity is not None and (not isinstance(granularity, str) or granularity not in allowed):
                return f"granularity must be a string, one of {', '.join(allowed)}"
            extra["depth"] = depth
            if granularity is not None:
                extra["granularity"] = granularity
        return topic, symbol, extra

    def _subscribe_book(self, conn: ServerConnection, symbol: str, extra: dict[str, Any] | None) -> None:
        """(Re)subscribe with new parameters (Snapshot first, then Updates) or unsubscribe (extra None)."""
        books = self._books.setdefault(conn, {})
        if extra is None:
            books.pop(symbol, None)
            return
        book = books[symbol] = _Book(extra["depth"], extra.get("granularity"))
        self._send_book(conn, symbol, book)

    def forget(self, conn: ServerConnection) -> None:
        """A connection closed."""
        with self._lock:
            self._subs.pop(conn, None)
            self._books.pop(conn, None)

    def resend_all(self) -> None:
        """The next publish sends every broadcast stream again."""
        self._last.clear()

    # ---- publishing -------------------------------------------------------------------------------------

    def publish_once(self) -> int:
        """Push what changed on every topic; returns frames sent."""
        sent = 0
        with self._engine.lock:
            self._engine.tick()
            fresh = [f for a in self._engine.accounts.values() for f in a.fills if f.trade_id >= self._trade_cursor]
            self._trade_cursor = self._engine.next_trade_id
        for fill in sorted(fresh, key=lambda f: f.trade_id):
            frame = _frame(fill.symbol, "trades", {"trade": _trade(fill)})
            sent += self._publish(_key("trades", fill.symbol, {}), frame)
        for symbol in self._contracts:
            for topic, data in self._broadcasts(symbol).items():
                sent += self._send_if_changed(_key(topic, symbol, {}), symbol, topic, data)
            for interval in KLINE_INTERVALS:
                key = _key("klines", symbol, {"interval": interval})
                if self._subscribers(key):
                    sent += self._send_if_changed(key, symbol, "klines", {"klines": [self._kline(symbol, interval)]})
        with self._lock:
            for conn, books in self._books.items():
                for symbol, book in books.items():
                    sent += self._send_book(conn, symbol, book)
        return sent

    def _broadcasts(self, symbol: str) -> dict[str, dict[str, Any]]:
        with self._engine.lock:
            bids, asks = self._engine.book(symbol)
            mark = s(self._engine.mark(symbol))
            funding: dict[str, Any] = {"estimatedFundingRate": s(self._engine.markets[symbol].funding_rate),
                       "nextFundingTimestamp": self._engine.next_funding_ts(symbol)}  # fmt: skip
        out: dict[str, dict[str, Any]] = {
            "ask_bid_price": {"bidPrice": s(bids[0][0]), "bidSize": s(bids[0][1]),
                              "askPrice": s(asks[0][0]), "askSize": s(asks[0][1])},
            "mark_price": {"markPrice": mark},
        }  # fmt: skip
        if self._subscribers(_key("spot_price", symbol, {})):
            out["spot_price"] = {"spotPrice": mark}  # the sim's index is its mark, as GET /market/data/prices
        if self._subscribers(_key("funding_rate_estimation", symbol, {})):
            out["funding_rate_estimation"] = {"fundingRateEstimation": funding}
        return out

    def _send_if_changed(self, key: str, symbol: str, topic: str, data: dict[str, Any]) -> int:
        values = (json.dumps(data, sort_keys=True),)
        if self._last.get(key) == values:
            return 0
        self._last[key] = values
        return self._publish(key, _frame(symbol, topic, data))

    def _kline(self, symbol: str, interval: str) -> dict[str, Any]:
        """The current candle of `interval`, from the public trade tape."""
        step = KLINE_INTERVALS[interval]
        with self._engine.lock:
            now_s = int(self._engine.clock.now().timestamp())
            open_s = now_s - now_s % step
            inside = [f for a in self._engine.accounts.values() for f in a.fills
                      if f.symbol == symbol and open_s <= f.ts.timestamp() < open_s + step]  # fmt: skip
            mark = self._engine.mark(symbol)
        inside.sort(key=lambda f: f.trade_id)
        prices = [f.price for f in inside] or [mark]
        notional = sum((f.price * f.quantity for f in inside), Decimal(0))
        return {"open": s(prices[0]), "high": s(max(prices)), "low": s(min(prices)), "close": s(prices[-1]),
                "volumeNotional": s(notional), "interval": interval, "timestamp": open_s}  # fmt: skip

    def _send_book(self, conn: ServerConnection, symbol: str, book: _Book) -> int:
        """Snapshot on the first send, then an Update when the levels changed (called under self._lock)."""
        with self._engine.lock:
            bids, asks = self._engine.book(symbol)
            now_ms = us(self._engine.clock.now()) // 1000
        g = Decimal(book.granularity) if book.granularity else None
        levels: dict[str, Levels] = {"bid": _aggregate(bids, g, ROUND_FLOOR)[: book.depth],
                  "ask": _aggregate(asks, g, ROUND_CEILING)[: book.depth]}  # fmt: skip
        snapshot = not book.sent
        if not snapshot and levels == book.sent:
            return 0
        data: dict[str, Any] = {side: _side(lv, [] if snapshot else book.sent[side]) for side, lv in levels.items()}
        book.sent = levels
        frame = {"symbol": symbol, "topic": "orderbook", "messageType": "Snapshot" if snapshot else "Update",
                 "timestamp_ms": now_ms, "data": data}  # fmt: skip
        try:
            conn.send(json.dumps(frame))
        except ConnectionClosed:
            return 0
        return 1


def _key(topic: str, symbol: str, extra: dict[str, Any]) -> str:
    """The server's stream key; klines carry their interval (one stream per interval)."""
    return f"{topic}:{symbol}:{extra['interval']}" if topic == "klines" else f"{topic}:{symbol}"


def _frame(symbol: str, topic: str, data: dict[str, Any]) -> str:
    return json.dumps({"symbol": symbol, "topic": topic, "data": data})


def _trade(fill: SimFill) -> dict[str, Any]:
    """A fill on the public tape; a maker fill's taker traded the other way."""
    buy = (fill.side is Side.LONG) != fill.is_maker
    return {"price": s(fill.price), "quantity": s(fill.quantity), "takerSide": "Buy" if buy else "Sell",
            "timestamp": int(fill.ts.timestamp())}  # fmt: skip


def _aggregate(levels: Levels, granularity: Decimal | None, rounding: str) -> Levels:
    """Levels bucketed to `granularity` (bids down, asks up), best first."""
    if granularity is None:
        return list(levels)
    out: dict[Decimal, Decimal] = {}
    for price, qty in levels:
        bucket = (price / granularity).to_integral_value(rounding=rounding) * granularity
        out[bucket] = out.get(bucket, Decimal(0)) + qty
    return list(out.items())


def _side(levels: Levels, before: Levels) -> dict[str, Any] | None:
    """`{startPrice, endPrice, levels}`; an Update also deletes (quantity 0) old levels inside the new range."""
    if not levels:
        return None
    low, high = min(p for p, _ in levels), max(p for p, _ in levels)
    now = dict(levels)
    gone = [(p, Decimal(0)) for p, _ in before if low <= p <= high and p not in now]
    return {"startPrice": s(levels[0][0]), "endPrice": s(levels[-1][0]),
            "levels": [{"price": s(p), "quantity": s(q)} for p, q in levels + gone]}  # fmt: skip
