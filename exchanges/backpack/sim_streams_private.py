"""Backpack simulator: the signed account streams (account.orderUpdate[.<sym>], account.positionUpdate[.<sym>]).

Events come from the engine's order listener, which runs under the engine lock inside the request that
changed the order: each event is on the wire before that request's REST reply, and events of one account
leave in the order the engine made them (unless the reorder fault says otherwise).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from core.clock import Clock
from core.domain import Side
from exchanges.backpack.sim_streams_wire import frame, order_event, position_event, us
from exchanges.base import OrderStatus
from exchanges.sim.engine import SimAccount, SimEngine, SimFill, SimOrder, SimPosition
from exchanges.sim.ws import SimWsServer, WsSession

ORDER_STREAM = "account.orderUpdate"
POSITION_STREAM = "account.positionUpdate"
PRIVATE_PREFIX = "account."
MAX_WINDOW_MS = 60000
# A reordered event waits for the next one of its account; with none coming, it goes out after this long.
REORDER_HOLD_S = 1.0


def private_key(stream: str, account: str) -> str:
    """The server-side subscription key: the stream name bound to the account that signed for it."""
    return f"{stream}@{account}"


@dataclass
class _Progress:
    """What the stream has told about one order still open."""

    accepted: bool = False
    last_trade_id: int = 0


@dataclass(frozen=True)
class _Event:
    account: str
    symbol: str
    stream: str  # ORDER_STREAM or POSITION_STREAM
    data: dict[str, Any]


class PrivateStreams:
    """Verifies signed subscriptions and pushes each account's order and position events to its subscribers."""

    def __init__(
        self, engine: SimEngine, clock: Clock, accounts: Mapping[str, SimAccount], ws: Callable[[], SimWsServer]
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._accounts = accounts  # API key -> account: the sim's own table, read at subscribe time
        self._ws = ws
        self._progress: dict[str, _Progress] = {}
        self._held: dict[str, tuple[_Event, float]] = {}

    # ---- subscribing ------------------------------------------------------------------------------------

    @staticmethod
    def known(stream: str, symbols: Mapping[str, Any]) -> bool:
        """Whether `stream` names a private stream the venue serves."""
        base, _, symbol = stream.removeprefix(PRIVATE_PREFIX).partition(".")
        return f"{PRIVATE_PREFIX}{base}" in (ORDER_STREAM, POSITION_STREAM) and (not symbol or symbol in symbols)

    def verify(self, signature: Any) -> SimAccount | None:
        """The account whose key signed `instruction=subscribe&timestamp=T&window=W` (vector V5), or None."""
        if not isinstance(signature, list) or len(signature) != 4 or not all(isinstance(x, str) for x in signature):
            return None
        api_key, sig, timestamp, window = signature
        if not (timestamp.isascii() and timestamp.isdigit() and window.isascii() and window.isdigit()):
            return None
        now_ms = int(self._clock.now().timestamp() * 1000)
        # As on REST: a window above the maximum, a stale or a far-future timestamp is refused.
        if int(window) > MAX_WINDOW_MS or abs(now_ms - int(timestamp)) > int(window):
            return None
        account = self._accounts.get(api_key)
        try:
            message = f"instruction=subscribe&timestamp={timestamp}&window={window}".encode()
            VerifyKey(base64.b64decode(api_key, validate=True)).verify(message, base64.b64decode(sig, validate=True))
        except (BadSignatureError, ValueError, TypeError):
            return None
        return account

    def subscribe(self, session: WsSession, account: SimAccount, streams: list[str]) -> None:
        """Bind `streams` to `account` on this connection; position streams first get the open positions."""
        with self._engine.lock:  # no event can slip between the snapshot and the subscription
            session.subscribe(private_key(x, account.name) for x in streams)
            now_us = us(self._clock.now())
            for stream in streams:
                if not stream.startswith(POSITION_STREAM):
                    continue
                wanted = stream.removeprefix(POSITION_STREAM).removeprefix(".")
                for symbol, pos in account.positions.items():
                    if pos.quantity and wanted in ("", symbol):
                        session.send(frame(stream, position_event(self._engine, account, symbol, None, now_us)))

    @staticmethod
    def unsubscribe(session: WsSession, streams: list[str]) -> None:
        """Drop these streams for whichever account this connection holds them for."""
        session.unsubscribe(k for k in session.held_keys() if k.partition("@")[0] in streams)

    # ---- events -----------------------------------------------------------------------------------------

    def on_order(self, account: SimAccount, order: SimOrder) -> list[SimFill]:
        """The engine's order listener: push what changed since the last call; returns the order's new fills."""
        progress = self._progress.setdefault(order.id, _Progress())
        fills = self._new_fills(account, order, progress.last_trade_id)
        if not self._listened(account.name):  # nobody to tell: keep the bookkeeping, build no events
            progress.accepted = True
            progress.last_trade_id = fills[-1].trade_id if fills else progress.last_trade_id
            if order.status.is_final:
                del self._progress[order.id]
            return fills
        now_us = us(self._clock.now())
        executed = order.filled - sum((f.quantity for f in fills), Decimal(0))
        executed_quote = order.filled_quote - sum((f.price * f.quantity for f in fills), Decimal(0))
        events: list[dict[str, Any]] = []
        if not progress.accepted:
            progress.accepted = True
            events.append(order_event("orderAccepted", order, now_us=now_us, status=OrderStatus.NEW,
                                      executed=executed, executed_quote=executed_quote))  # fmt: skip
        for fill in fills:
            executed += fill.quantity
            executed_quote += fill.price * fill.quantity
            status = OrderStatus.FILLED if executed >= order.quantity else OrderStatus.PARTIALLY_FILLED
            events.append(order_event("orderFill", order, now_us=now_us, status=status, executed=executed,
                                      executed_quote=executed_quote, fill=fill))  # fmt: skip
            progress.last_trade_id = fill.trade_id
        ending = {OrderStatus.CANCELLED: "orderCancelled", OrderStatus.EXPIRED: "orderExpired"}.get(order.status)
        if ending is not None:
            events.append(order_event(ending, order, now_us=now_us, status=order.status, executed=executed,
                                      executed_quote=executed_quote))  # fmt: skip
        if not events:  # seen before, nothing filled or ended: its quantity or price changed
            events.append(order_event("orderModified", order, now_us=now_us, status=order.status,
                                      executed=executed, executed_quote=executed_quote))  # fmt: skip
        if order.status.is_final:
            del self._progress[order.id]
        for data in events:
            self._emit(_Event(account.name, order.symbol, ORDER_STREAM, data))
        if fills:
            self._emit_position(account, order.symbol, fills, now_us)
        return fills

    def _listened(self, account: str) -> bool:
        suffix = f"@{account}"
        return account in self._held or any(k.endswith(suffix) for k in self._ws().subscribed_keys())

    @staticmethod
    def _new_fills(account: SimAccount, order: SimOrder, after_trade_id: int) -> list[SimFill]:
        # The engine calls its listeners right after an order's fills, so the new ones end the account's list.
        out: list[SimFill] = []
        for fill in reversed(account.fills):
            if fill.order_id != order.id or fill.trade_id <= after_trade_id:
                break
            out.append(fill)
        out.reverse()
        return out

    def _emit_position(self, account: SimAccount, symbol: str, fills: list[SimFill], now_us: int) -> None:
        now = account.positions.get(symbol, SimPosition()).quantity
        before = now - sum((f.quantity if f.side is Side.LONG else -f.quantity for f in fills), Decimal(0))
        kind = "positionOpened" if not before else "positionClosed" if not now else "positionAdjusted"
        data = position_event(self._engine, account, symbol, kind, now_us)
        self._emit(_Event(account.name, symbol, POSITION_STREAM, data))

    # ---- delivery and its faults ------------------------------------------------------------------------

    def _emit(self, event: _Event) -> None:
        faults = self._engine.faults
        if faults.take_private_silence():
            return
        held = self._held.pop(event.account, None)
        if held is not None:
            self._send(event)
            self._send(held[0])
            faults.note_taken("reorder_private")
        elif faults.take_reorder():
            self._held[event.account] = (event, time.monotonic())
        else:
            self._send(event)

    def release_held(self, max_age_s: float = REORDER_HOLD_S) -> int:
        """Send reordered events that waited `max_age_s` for a follower in vain; returns how many."""
        with self._engine.lock:
            due = [a for a, (_e, at) in self._held.items() if time.monotonic() - at >= max_age_s]
            for account in due:
                self._send(self._held.pop(account)[0])
                self._engine.faults.note_taken("reorder_private")
            return len(due)

    def _send(self, event: _Event) -> None:
        for stream in (event.stream, f"{event.stream}.{event.symbol}"):
            self._ws().publish(private_key(stream, event.account), frame(stream, event.data))
