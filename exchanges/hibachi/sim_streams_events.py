"""Hibachi simulator: the account stream's events, built from the engine's real order processing.

`AccountEvents.on_order` is a `SimEngine.order_listeners` hook: every call (under the engine lock) turns one
change of one order into a batch of pushes (order created, fills, position, balance, order updated), which the
account sessions deliver before the request that caused them gets its reply.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from core.domain import Side
from exchanges.base import OrderType
from exchanges.hibachi.sim_wire import SimCredentials, s, us, usd
from exchanges.sim.engine import SimAccount, SimEngine, SimFill, SimOrder

# Spec §7 item 6: sources disagree on the envelope key (`topic`: SDK; `event`: GO) and on event names. The sim
# picks `topic` and the DOCS' names; change them here and nowhere else.
ENVELOPE_KEY = "topic"
ORDER_CREATED, ORDER_UPDATED, ORDER_CANCELED = "ORDER_CREATED", "ORDER_UPDATED", "ORDER_CANCELED"
TRADE_UPDATE, POSITION_UPDATE, BALANCE_UPDATE = "trade_update", "position_update", "balance_update"
EVENT_NAMES = (ORDER_CREATED, ORDER_UPDATED, ORDER_CANCELED, TRADE_UPDATE, POSITION_UPDATE, BALANCE_UPDATE)

Batch = list[dict[str, Any]]
Deliver = Callable[[int, Batch], None]  # (account id, events of one engine change)


def envelope(name: str, account_id: int, timestamp_ms: int, data: dict[str, Any]) -> dict[str, Any]:
    """One pushed event as it goes on the wire (the single place the uncertain envelope is decided)."""
    return {ENVELOPE_KEY: name, "accountId": account_id, "timestamp_ms": timestamp_ms, "data": data}


def position_json(engine: SimEngine, account: SimAccount, symbol: str) -> dict[str, Any]:
    """A position as GET /trade/account/info lists it; a flat one has quantity 0 and no direction."""
    pos = account.positions.get(symbol)
    qty = abs(pos.quantity) if pos is not None else Decimal(0)
    entry = pos.entry_price if pos is not None and qty else Decimal(0)
    mark = engine.mark(symbol)
    signed = pos.quantity if pos is not None else Decimal(0)
    return {
        "symbol": symbol, "direction": None if not qty else "Long" if signed > 0 else "Short", "quantity": s(qty),
        "entryNotional": usd(entry * qty), "notionalValue": usd(mark * qty), "openPrice": s(entry),
        "markPrice": s(mark), "unrealizedTradingPnl": usd((mark - entry) * signed), "unrealizedFundingPnl": "0",
    }  # fmt: skip


def snapshot_json(engine: SimEngine, creds: SimCredentials) -> dict[str, Any]:
    """`accountSnapshot` of stream.start: account id, equity and the open positions."""
    acc = creds.account
    positions = [position_json(engine, acc, sym) for sym, p in acc.positions.items() if p.quantity]
    return {"account_id": creds.account_id, "balance": usd(engine.equity(acc)), "positions": positions}


class AccountEvents:
    """Turns engine order changes into event batches for the accounts the simulator knows."""

    def __init__(
        self,
        engine: SimEngine,
        credentials: Callable[[SimAccount], SimCredentials | None],
        order_json: Callable[[SimCredentials, SimOrder], dict[str, Any]],
        wire_status: Callable[[SimOrder], str],
        deliver: Deliver,
    ) -> None:
        self._engine = engine
        self._credentials = credentials
        self._order_json = order_json
        self._wire_status = wire_status
        self._deliver = deliver
        self._fills_seen: dict[str, int] = {}  # account name -> fills already turned into events
        self._announced: set[str] = set()  # orders whose ORDER_CREATED went out and that are not final yet

    def track(self, account: SimAccount) -> None:
        """Start from the account's present fills (history before this is not an event)."""
        with self._engine.lock:
            self._fills_seen[account.name] = len(account.fills)

    def on_order(self, account: SimAccount, order: SimOrder) -> None:
        """The SimEngine order listener."""
        creds = self._credentials(account)
        if creds is None:
            return
        # min(): fills replaced wholesale (a reload) start again from the present
        seen = min(self._fills_seen.get(account.name, 0), len(account.fills))
        fills = account.fills[seen:]
        self._fills_seen[account.name] = len(account.fills)
        stamp = us(self._engine.clock.now()) // 1000
        batch: Batch = []

        def add(name: str, data: dict[str, Any]) -> None:
            batch.append(envelope(name, creds.account_id, stamp, data))

        created = self._created_state(creds, order)
        is_new = order.id not in self._announced
        if is_new:
            add(ORDER_CREATED, created)
            self._announced.add(order.id)
        for fill in fills:
            owner = account.orders.get(fill.order_id, order)
            later = sum((f.quantity for f in fills if f.order_id == fill.order_id and f.trade_id > fill.trade_id),
                        Decimal(0))  # fmt: skip
            add(TRADE_UPDATE, self._fill_json(owner, fill, owner.filled - later))
        for symbol in dict.fromkeys(f.symbol for f in fills):
            add(POSITION_UPDATE, position_json(self._engine, account, symbol))
        if fills:
            add(BALANCE_UPDATE, {"balance": usd(self._engine.equity(account)),
                                 "assets": [{"symbol": "USDT", "quantity": usd(account.collateral)}]})  # fmt: skip
        now = self._order_data(creds, order)
        if not is_new or now != created:
            add(ORDER_CANCELED if now["status"] == "CANCELLED" and not order.filled else ORDER_UPDATED, now)
        if order.status.is_final:
            self._announced.discard(order.id)
        self._deliver(creds.account_id, batch)

    def _order_data(self, creds: SimCredentials, order: SimOrder) -> dict[str, Any]:
        average = order.average_price
        return self._order_json(creds, order) | {
            "filledQuantity": s(order.filled), "avgFillPrice": s(average) if average is not None else None,
            "nonce": order.nonce,
        }  # fmt: skip

    def _created_state(self, creds: SimCredentials, order: SimOrder) -> dict[str, Any]:
        """The order as it was accepted, before any fill."""
        data = self._order_data(creds, order)
        data.update(status="PLACED", availableQuantity=s(order.quantity), filledQuantity="0", avgFillPrice=None)
        return data

    def _fill_json(self, order: SimOrder, fill: SimFill, cumulative: Decimal) -> dict[str, Any]:
        # The operation's last fill carries the order's state after it; earlier ones are partial fills.
        status = self._wire_status(order) if cumulative >= order.filled else "PARTIALLY_FILLED"
        return {
            "id": fill.trade_id, "orderId": fill.order_id, "clientId": fill.client_id, "nonce": order.nonce,
            "symbol": fill.symbol, "side": "Buy" if fill.side is Side.LONG else "Sell",
            "orderType": "MARKET" if order.order_type is OrderType.MARKET else "LIMIT",
            "price": s(fill.price), "quantity": s(fill.quantity), "fee": s(fill.fee),
            "realizedPnl": s(fill.realized_pnl), "isTaker": not fill.is_maker,
            "timestamp": int(fill.ts.timestamp()), "timestamp_ns_partial": fill.ts.microsecond * 1000,
            "filledQuantity": s(cumulative), "totalQuantity": s(order.quantity), "orderStatus": status,
        }  # fmt: skip
