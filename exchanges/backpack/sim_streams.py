"""Backpack simulator: the websocket's subscribe protocol and its public streams beyond bookTicker/markPrice.

Depth: `depth.<sym>` first sends the subscriber the whole book as one event whose `U` = `u` = the book's
current update id, then deltas (absolute quantity per changed level, "0" removes one) with `U` = previous
`u` + 1. A client applies the first event as its book and each next one in turn; on a gap it resubscribes.
The usual REST route works too: GET /api/v1/depth answers the same book with `lastUpdateId` = that id, so
"drop events with u <= lastUpdateId, then require U = previous u + 1" syncs exactly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from core.clock import Clock
from exchanges.backpack.sim_streams_private import PRIVATE_PREFIX, PrivateStreams
from exchanges.backpack.sim_streams_wire import (
    candle,
    depth_event,
    frame,
    iso_naive,
    liquidation_event,
    trade_event,
    us,
)
from exchanges.backpack.sim_wire import KLINE_INTERVALS, s
from exchanges.sim.engine import SimEngine, SimFill, SimOrder
from exchanges.sim.ws import SimWsServer, WsSession

PER_SYMBOL = ("bookTicker", "markPrice", "depth", "ticker", "trade", "openInterest")
OPEN_INTEREST_EVERY_S = 60  # the venue pushes open interest every 60 s (and here also when it changes)


def error_frame(code: int, message: str) -> str:
    """The documented error reply `{"id": null, "error": {code, message}}`."""
    return json.dumps({"id": None, "error": {"code": code, "message": message}})


INVALID_REQUEST = error_frame(4000, "Invalid request")
INVALID_METHOD = error_frame(4000, "Invalid method")
INVALID_STREAM = error_frame(4006, "Invalid stream")
# The venue's reply to a bad private-stream signature is undocumented (spec §5); this code and text are ours.
INVALID_SIGNATURE = error_frame(4006, "Invalid signature")


def _request(text: str) -> dict[str, Any] | None:
    """A SUBSCRIBE/UNSUBSCRIBE frame as an object with a method and a list of stream names, or None."""
    try:
        msg = json.loads(text)
    except ValueError:
        return None
    if not isinstance(msg, dict) or "method" not in msg:
        return None
    streams = msg.get("params")
    if not isinstance(streams, list) or not all(isinstance(x, str) for x in streams):
        return None
    return msg


@dataclass
class _Book:
    asks: dict[Decimal, Decimal]
    bids: dict[Decimal, Decimal]
    update_id: int


def _levels(levels: dict[Decimal, Decimal], descending: bool) -> list[list[str]]:
    return [[s(p), s(q)] for p, q in sorted(levels.items(), reverse=descending)]


def _changes(old: dict[Decimal, Decimal], new: dict[Decimal, Decimal], descending: bool) -> list[list[str]]:
    changed = {p: q for p, q in new.items() if old.get(p) != q} | {p: Decimal(0) for p in old if p not in new}
    return _levels(changed, descending)


class BackpackStreams:
    """Parses SUBSCRIBE/UNSUBSCRIBE frames and publishes depth, kline, ticker, openInterest, trade, liquidation."""

    def __init__(
        self,
        engine: SimEngine,
        clock: Clock,
        ws: Callable[[], SimWsServer],
        private: PrivateStreams,
        ticker_json: Callable[[str], dict[str, str]],
        tape: Callable[[str], list[SimFill]],
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._ws = ws
        self.private = private
        self._ticker_json = ticker_json
        self._tape = tape
        self._books: dict[str, _Book] = {}
        self._last: dict[str, tuple[Any, ...]] = {}

    # ---- the subscribe protocol -------------------------------------------------------------------------

    def known(self, stream: str) -> bool:
        """Whether `stream` names a public stream the venue serves."""
        kind, _, rest = stream.partition(".")
        if kind == "kline":
            interval, _, symbol = rest.partition(".")
            return interval in KLINE_INTERVALS and symbol in self._engine.markets
        return stream == "liquidation" or (kind in PER_SYMBOL and rest in self._engine.markets)

    def on_frame(self, session: WsSession, text: str) -> None:
        """Handle one text frame of a connection."""
        msg = _request(text)
        if msg is None:
            session.send(INVALID_REQUEST)
            return
        method, streams = msg["method"], msg["params"]
        private = [x for x in streams if x.startswith(PRIVATE_PREFIX)]
        public = [x for x in streams if not x.startswith(PRIVATE_PREFIX)]
        if method == "UNSUBSCRIBE":
            session.unsubscribe(public)
            self.private.unsubscribe(session, private)
            return
        if method != "SUBSCRIBE":
            session.send(INVALID_METHOD)
            return
        good_public = [x for x in public if self.known(x)]
        good_private = [x for x in private if self.private.known(x, self._engine.markets)]
        if len(good_public) + len(good_private) < len(streams):
            session.send(INVALID_STREAM)
        self._subscribe_public(session, good_public)
        if good_private:
            account = self.private.verify(msg.get("signature"))
            if account is None:
                session.send(INVALID_SIGNATURE)
            else:
                self.private.subscribe(session, account, good_private)

    def _subscribe_public(self, session: WsSession, streams: list[str]) -> None:
        depth = [x for x in streams if x.startswith("depth.")]
        if not depth:
            session.subscribe(streams)
            return
        with self._engine.lock:  # the snapshot and the subscription are one step: no delta falls between
            books = {x: self.depth_book(x.removeprefix("depth.")) for x in depth}
            session.subscribe(streams)
            now_us = us(self._clock.now())
            for stream, book in books.items():
                symbol = stream.removeprefix("depth.")
                data = depth_event(symbol, _levels(book.asks, False), _levels(book.bids, True), book.update_id,
                                   book.update_id, now_us)  # fmt: skip
                session.send(frame(stream, data))

    # ---- depth ------------------------------------------------------------------------------------------

    def depth_book(self, symbol: str) -> _Book:
        """The book as the depth stream last told it, brought up to date first (publishing the delta)."""
        with self._engine.lock:
            bids, asks = self._engine.book(symbol)
            new_asks, new_bids = dict(asks), dict(bids)
            book = self._books.get(symbol)
            if book is None:
                book = self._books[symbol] = _Book(new_asks, new_bids, 1)
                return book
            delta_asks = _changes(book.asks, new_asks, False)
            delta_bids = _changes(book.bids, new_bids, True)
            if delta_asks or delta_bids:
                book.update_id += 1
                book.asks, book.bids = new_asks, new_bids
                data = depth_event(symbol, delta_asks, delta_bids, book.update_id, book.update_id,
                                   us(self._clock.now()))  # fmt: skip
                self._ws().publish(f"depth.{symbol}", frame(f"depth.{symbol}", data))
            return book

    # ---- trades (from the engine's order listener) ------------------------------------------------------

    def on_fills(self, order: SimOrder, fills: list[SimFill]) -> None:
        """Print each fill on trade.<symbol>, and a liquidation order's fills on `liquidation`."""
        ws = self._ws()
        if not fills or not ws.subscribed_keys() & {f"trade.{order.symbol}", "liquidation"}:
            return
        now_us = us(self._clock.now())
        for fill in fills:
            ws.publish(f"trade.{fill.symbol}", frame(f"trade.{fill.symbol}", trade_event(fill, now_us)))
            if order.expiry_reason == "Liquidation":
                ws.publish("liquidation", frame("liquidation", liquidation_event(fill, now_us)))

    # ---- streams pushed on a schedule -------------------------------------------------------------------

    def resend_all(self) -> None:
        """Forget what was sent: the next publish sends every scheduled stream again (a new subscriber)."""
        self._last.clear()

    def publish_scheduled(self) -> int:
        """Bring depth up to date and push ticker (each second), openInterest and kline where due; frames sent."""
        ws = self._ws()
        sent_before = ws.sent
        now = self._clock.now()
        second = int(now.timestamp())
        for key in sorted(ws.subscribed_keys()):
            kind, _, rest = key.partition(".")
            if kind == "depth":
                self.depth_book(rest)
            elif kind == "ticker" and self._last.get(key, (None,))[0] != second:
                self._last[key] = (second,)
                self._ticker(key, rest, us(now))
            elif kind == "openInterest":
                self._open_interest(key, rest, second)
            elif kind == "kline":
                self._kline(key, rest, second)
        return ws.sent - sent_before

    def _ticker(self, key: str, symbol: str, now_us: int) -> None:
        with self._engine.lock:
            t = self._ticker_json(symbol)
        data = {"e": "ticker", "E": now_us, "s": symbol, "o": t["firstPrice"], "c": t["lastPrice"], "h": t["high"],
                "l": t["low"], "v": t["volume"], "V": t["quoteVolume"], "n": int(t["trades"])}  # fmt: skip
        self._ws().publish(key, frame(key, data))

    def _open_interest(self, key: str, symbol: str, second: int) -> None:
        with self._engine.lock:
            longs = sum((p.quantity for a in self._engine.accounts.values()
                         for x, p in a.positions.items() if x == symbol and p.quantity > 0), Decimal(0))  # fmt: skip
        last = self._last.get(key)
        if last is not None and last[1] == longs and second - last[0] < OPEN_INTEREST_EVERY_S:
            return
        self._last[key] = (second, longs)
        data = {"e": "openInterest", "E": us(self._clock.now()), "s": symbol, "o": s(longs)}
        self._ws().publish(key, frame(key, data))

    def _kline(self, key: str, rest: str, second: int) -> None:
        interval, _, symbol = rest.partition(".")
        step = KLINE_INTERVALS[interval]
        start = second - second % step
        last = self._last.get(key)
        if last is not None and last[0] == second:
            return  # at most once a second
        if last is not None and last[1] != start:  # the previous candle closed: its final form first
            self._send_kline(key, symbol, last[1], step, second, closed=True)
        unchanged = last[2] if last is not None and last[1] == start else None
        values = self._send_kline(key, symbol, start, step, second, closed=False, unless=unchanged)
        self._last[key] = (second, start, values)

    def _send_kline(self, key: str, symbol: str, start: int, step: int, second: int, *, closed: bool,
                    unless: tuple[Any, ...] | None = None) -> tuple[Any, ...]:  # fmt: skip
        with self._engine.lock:
            tape = self._tape(symbol)
            mark = self._engine.mark(symbol)
        inside = [f for f in tape if start <= f.ts.timestamp() < start + step]
        before = [f for f in tape if f.ts.timestamp() < start]
        values = candle(inside, before[-1].price if before else mark)
        if values != unless:
            o, c, h, low, v, n = values
            data = {"e": "kline", "E": us(self._clock.now()), "s": symbol, "t": iso_naive(start),
                    "T": iso_naive(start + step), "o": o, "c": c, "h": h, "l": low, "v": v, "n": n,
                    "X": closed}  # fmt: skip
            self._ws().publish(key, frame(key, data))
        return values
