"""Backpack simulator: websocket payloads (spec §5, the AsyncAPI schemas) built from the engine's state.

Decimals go out as strings except where the AsyncAPI types a field `number` (the position stream): there the
exact digits are written as a JSON number, never through a float.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from core.domain import Side
from exchanges.backpack.sim_wire import SIDE, STATUS, s
from exchanges.base import OrderStatus, OrderType, TimeInForce
from exchanges.sim.engine import SimAccount, SimEngine, SimFill, SimOrder, SimPosition

FEE_ASSET = "USDC"
STP_MODE = "RejectTaker"  # what the REST side reports for every order
# The synthetic book has no orders of its own; trades name this id for its side (ours, not the venue's).
BOOK_ORDER_ID = "0"


def us(ts: datetime) -> int:
    """Epoch microseconds (the streams' E and T)."""
    return int(ts.timestamp() * 1_000_000)


def iso_naive(epoch_s: int) -> str:
    """A kline bound: naive ISO 8601 in UTC (the AsyncAPI says ISO; Backpack writes no zone)."""
    return datetime.fromtimestamp(epoch_s, UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def _value(v: Any) -> str:
    return s(v) if isinstance(v, Decimal) else json.dumps(v, separators=(",", ":"))


def frame(stream: str, data: dict[str, Any]) -> str:
    """The envelope `{"stream", "data"}`; Decimal values in `data` become JSON numbers with their exact digits."""
    body = ",".join(f"{json.dumps(k)}:{_value(v)}" for k, v in data.items())
    return f'{{"stream":{json.dumps(stream)},"data":{{{body}}}}}'


def order_event(
    kind: str,
    order: SimOrder,
    *,
    now_us: int,
    status: OrderStatus,
    executed: Decimal,
    executed_quote: Decimal,
    fill: SimFill | None = None,
) -> dict[str, Any]:
    """One account.orderUpdate payload; `status`, `executed` and `executed_quote` are as of this event."""
    data: dict[str, Any] = {"e": kind, "E": now_us, "s": order.symbol, "i": order.id}
    if order.client_id is not None:
        data["c"] = int(order.client_id)
    limit = order.order_type is OrderType.LIMIT
    data |= {
        "S": SIDE[order.side], "o": "LIMIT" if limit else "MARKET",
        "f": "IOC" if order.time_in_force is TimeInForce.IOC else "GTC", "q": s(order.quantity),
    }  # fmt: skip
    if limit and order.price is not None:
        data["p"] = s(order.price)
        data["y"] = order.time_in_force is TimeInForce.POST_ONLY
    data |= {"r": order.reduce_only, "X": STATUS[status], "z": s(executed), "Z": s(executed_quote), "V": STP_MODE}
    if fill is not None:
        data |= {"l": s(fill.quantity), "L": s(fill.price), "t": fill.trade_id, "m": fill.is_maker,
                 "n": s(fill.fee), "N": FEE_ASSET}  # fmt: skip
    if kind == "orderExpired" and order.expiry_reason is not None:
        data["R"] = order.expiry_reason
    data["O"] = "LIQUIDATION_AUTOCLOSE" if order.expiry_reason == "Liquidation" else "USER"
    data["T"] = us(fill.ts) if fill is not None else now_us
    return data


def position_event(
    engine: SimEngine, account: SimAccount, symbol: str, kind: str | None, now_us: int
) -> dict[str, Any]:
    """One account.positionUpdate payload (`kind` None: the snapshot sent on subscribe, without `e`)."""
    pos = account.positions.get(symbol, SimPosition())
    m = engine.markets[symbol]
    mark = engine.mark(symbol)
    data: dict[str, Any] = {} if kind is None else {"e": kind}
    # Exposure as the REST position reply states it (|net quantity|); the sim has no separate break-even price.
    data |= {
        "E": now_us, "s": symbol, "i": f"{account.name}-{symbol}", "q": pos.quantity, "Q": abs(pos.quantity),
        "n": abs(pos.quantity) * mark, "B": pos.entry_price, "b": pos.entry_price, "M": mark,
        "f": m.initial_margin_rate, "m": m.maintenance_margin_rate, "p": s(pos.realized_pnl),
        "P": s((mark - pos.entry_price) * pos.quantity), "T": now_us,
    }  # fmt: skip
    return data


def trade_event(fill: SimFill, now_us: int) -> dict[str, Any]:
    """A trade.<symbol> payload for one of the engine's fills (the other side is the synthetic book)."""
    ours_buys = fill.side is Side.LONG
    return {
        "e": "trade", "E": now_us, "s": fill.symbol, "p": s(fill.price), "q": s(fill.quantity),
        "b": fill.order_id if ours_buys else BOOK_ORDER_ID, "a": BOOK_ORDER_ID if ours_buys else fill.order_id,
        "t": fill.trade_id, "T": us(fill.ts), "m": ours_buys == fill.is_maker,
    }  # fmt: skip


def liquidation_event(fill: SimFill, now_us: int) -> dict[str, Any]:
    """A liquidation payload for a fill of a venue-placed liquidation order."""
    return {"e": "liquidation", "E": now_us, "q": s(fill.quantity), "p": s(fill.price), "S": SIDE[fill.side],
            "s": fill.symbol, "T": us(fill.ts)}  # fmt: skip


def depth_event(
    symbol: str, asks: list[list[str]], bids: list[list[str]], first: int, last: int, now_us: int
) -> dict[str, Any]:
    """A depth.<symbol> payload: absolute quantities per level ("0" removes one), update ids `first`..`last`."""
    return {"e": "depth", "E": now_us, "s": symbol, "a": asks, "b": bids, "U": first, "u": last, "T": now_us}


def candle(fills: list[SimFill], fallback: Decimal) -> tuple[str, str, str, str, str, int]:
    """(open, close, high, low, base volume, trade count) of `fills`; an empty candle shows `fallback` flat."""
    prices = [f.price for f in fills] or [fallback]
    volume = sum((f.quantity for f in fills), Decimal(0))
    return s(prices[0]), s(prices[-1]), s(max(prices)), s(min(prices)), s(volume), len(fills)
