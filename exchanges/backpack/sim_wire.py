"""Backpack's wire shapes for the simulator: number and time formats, the error body, markets and orders.

Fields the definition marks optional are left out rather than sent as null: its schemas allow no nulls.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from core.domain import Side
from exchanges.base import OrderStatus, OrderType, TimeInForce
from exchanges.sim.engine import RejectKind, SimMarket, SimOrder
from exchanges.sim.http import Response

# Backpack publishes no fee table in our sources; these are typical VIP0 futures rates (configurable).
MAKER_FEE = Decimal("0.0002")
TAKER_FEE = Decimal("0.0005")
MARKET_TYPES = ("SPOT", "PERP", "IPERP", "DATED", "PREDICTION", "RFQ")
SORT = ("Asc", "Desc")
KLINE_INTERVALS = {
    "1s": 1, "1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "2h": 7200, "4h": 14400,
    "6h": 21600, "8h": 28800, "12h": 43200, "1d": 86400, "3d": 259200, "1w": 604800, "1month": 2592000,
}  # fmt: skip

STATUS = {
    OrderStatus.NEW: "New",
    OrderStatus.PARTIALLY_FILLED: "PartiallyFilled",
    OrderStatus.FILLED: "Filled",
    OrderStatus.CANCELLED: "Cancelled",
    OrderStatus.EXPIRED: "Expired",
    OrderStatus.REJECTED: "TriggerFailed",
}
# The definition's SystemOrderType for an order the venue placed to close a liquidated position.
LIQUIDATION_ORDER_TYPE = "LiquidatePositionOnBook"
SIDE = {Side.LONG: "Bid", Side.SHORT: "Ask"}
SIDE_IN = {"Bid": Side.LONG, "Ask": Side.SHORT}
REJECT_CODES = {
    RejectKind.UNKNOWN_MARKET: (400, "INVALID_MARKET"),
    RejectKind.BAD_QUANTITY: (400, "INVALID_QUANTITY"),
    RejectKind.BAD_PRICE: (400, "INVALID_PRICE"),
    RejectKind.INSUFFICIENT_MARGIN: (400, "INSUFFICIENT_MARGIN"),
    RejectKind.REDUCE_ONLY: (400, "INVALID_ORDER"),
    RejectKind.DUPLICATE_CLIENT_ID: (400, "INVALID_CLIENT_REQUEST"),
    RejectKind.NOT_FOUND: (404, "RESOURCE_NOT_FOUND"),
    RejectKind.LEVERAGE: (400, "MAX_LEVERAGE_REACHED"),
}
HTTP_ERROR_CODES = {429: "TOO_MANY_REQUESTS", 500: "SERVER_ERROR", 502: "SERVER_ERROR", 503: "MAINTENANCE",
                    504: "TIMEOUT"}  # fmt: skip


def s(value: Decimal) -> str:
    """A Decimal as Backpack's plain decimal string."""
    return format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")


def ms(ts: datetime) -> int:
    """Epoch milliseconds."""
    return int(ts.timestamp() * 1000)


def iso(ts: datetime) -> str:
    """Backpack's naive ISO timestamp (UTC, milliseconds)."""
    return ts.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")


def error(status: int, code: str, message: str) -> Response:
    """Backpack's error body `{code, message}`."""
    return Response(status, {"code": code, "message": message})


def margin_function(base: Decimal, factor: str) -> dict[str, str]:
    """An imf/mmf function object."""
    return {"type": "sqrt", "base": s(base), "factor": factor}


def market_json(m: SimMarket) -> dict[str, Any]:
    """GET /api/v1/market(s) entry."""
    return {
        "symbol": m.symbol, "baseSymbol": m.asset, "quoteSymbol": "USDC", "marketType": "PERP",
        "orderBookState": "Open", "visible": True, "createdAt": "2024-01-01T00:00:00",
        "filters": {
            "price": {"tickSize": s(m.tick_size), "minPrice": s(m.tick_size)},
            "quantity": {"stepSize": s(m.step_size), "minQuantity": s(m.min_quantity)},
        },
        "imfFunction": margin_function(m.initial_margin_rate, "0.00006"),
        "mmfFunction": margin_function(m.maintenance_margin_rate, "0.00004"),
        "fundingInterval": m.funding_interval_s * 1000,
        "fundingRateUpperBound": "100", "fundingRateLowerBound": "-100", "openInterestLimit": "0",
    }  # fmt: skip


def order_json(o: SimOrder, *, history: bool = False) -> dict[str, Any]:
    """An order in Backpack's REST shape (`history`: the /wapi/v1/history/orders form)."""
    body: dict[str, Any] = {
        "id": o.id,
        "symbol": o.symbol,
        "side": SIDE[o.side],
        "orderType": "Market" if o.order_type is OrderType.MARKET else "Limit",
        "quantity": s(o.quantity),
        "executedQuantity": s(o.filled),
        "executedQuoteQuantity": s(o.filled_quote),
        "status": STATUS[o.status],
        "timeInForce": "IOC" if o.time_in_force is TimeInForce.IOC else "GTC",
        "selfTradePrevention": "RejectTaker",
        "reduceOnly": o.reduce_only,
        "createdAt": iso(o.created_at) if history else ms(o.created_at),
    }
    if o.client_id is not None:
        body["clientId"] = int(o.client_id)
    if o.order_type is OrderType.LIMIT and o.price is not None:  # the engine gives every limit order a price
        body["price"] = s(o.price)
        body["postOnly"] = o.time_in_force is TimeInForce.POST_ONLY
    if history:
        if o.expiry_reason is not None:
            body["expiryReason"] = o.expiry_reason
        if o.expiry_reason == "Liquidation":
            body["systemOrderType"] = LIQUIDATION_ORDER_TYPE
    return body
