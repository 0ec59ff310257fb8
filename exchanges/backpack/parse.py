"""Backpack JSON -> venue-neutral types (spec §3, §5). Pure; the wire's field names stay in this file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.domain import Side
from exchanges.base import Account, FeeRates, Fill, FundingPayment, Market, OrderResult, OrderStatus, Position
from exchanges.errors import (
    AuthError,
    InsufficientMargin,
    InvalidOrder,
    MalformedResponse,
    OrderNotFound,
    RateLimited,
    VenueError,
    VenueUnavailable,
)
from exchanges.quotes import QuoteUpdate
from exchanges.wire import (
    dec,
    dec_field,
    field,
    flag,
    from_micros,
    from_millis,
    from_naive_iso,
    integer,
    non_negative,
    opt_dec,
    positive,
    text,
)

VENUE = "backpack"
# Used when a perp market carries no imfFunction: a conservative cap rather than a guess at the venue's.
FALLBACK_MAX_LEVERAGE = Decimal(10)

SIDE_TO_WIRE = {Side.LONG: "Bid", Side.SHORT: "Ask"}
_SIDE_FROM_WIRE = {"Bid": Side.LONG, "Ask": Side.SHORT}
_STATUS = {
    "New": OrderStatus.NEW,
    "PartiallyFilled": OrderStatus.PARTIALLY_FILLED,
    "Filled": OrderStatus.FILLED,
    "Cancelled": OrderStatus.CANCELLED,
    "Expired": OrderStatus.EXPIRED,
    "TriggerPending": OrderStatus.NEW,
    "TriggerFailed": OrderStatus.REJECTED,
}

_AUTH_CODES = {"INVALID_SIGNATURE", "UNAUTHORIZED", "FORBIDDEN", "ACCOUNT_DEACTIVATED"}
_MARGIN_CODES = {
    "INSUFFICIENT_MARGIN",
    "INSUFFICIENT_FUNDS",
    "MAX_LEVERAGE_REACHED",
    "POSITION_LIMIT",
    "ACCOUNT_LIQUIDATING",
    "BORROW_LIMIT",
}
_UNAVAILABLE_CODES = {"SERVER_ERROR", "TIMEOUT", "MAINTENANCE", "TRADING_PAUSED", "TOO_EARLY"}


def parse_error(status: int, body: str, retry_after: str | None = None) -> VenueError:
    """The typed error for a non-2xx reply; the body may be JSON `{code, message}` or plain text."""
    code: str | None = None
    message = body.strip()[:300] or f"HTTP {status}"
    try:
        obj = json.loads(body)
    except ValueError:
        obj = None
    if isinstance(obj, Mapping) and isinstance(obj.get("code"), str):
        code = obj["code"]
        message = str(obj.get("message", ""))[:300] or code
    kw: dict[str, Any] = {"code": code, "http_status": status}
    if status == 429 or code == "TOO_MANY_REQUESTS":
        seconds: float | None = None
        if retry_after is not None:
            try:
                seconds = max(0.0, float(retry_after))
            except ValueError:
                seconds = None
        return RateLimited(VENUE, message, retry_after=seconds, **kw)
    if status == 401 or code in _AUTH_CODES:
        return AuthError(VENUE, message, **kw)
    if code in _MARGIN_CODES:
        return InsufficientMargin(VENUE, message, **kw)
    if status == 404 or code == "RESOURCE_NOT_FOUND":
        return OrderNotFound(VENUE, message, **kw)
    if status >= 500 or code in _UNAVAILABLE_CODES:
        return VenueUnavailable(VENUE, message, **kw)
    return InvalidOrder(VENUE, message, **kw)


def _side(value: Any) -> Side:
    if not isinstance(value, str) or value not in _SIDE_FROM_WIRE:
        raise MalformedResponse(VENUE, f"side: unknown value {str(value)[:20]!r}")
    return _SIDE_FROM_WIRE[value]


def parse_market(obj: Any) -> Market:
    """One market object of GET /api/v1/markets."""
    filters = field(VENUE, obj, "filters")
    price_filter = field(VENUE, filters, "price")
    quantity_filter = field(VENUE, filters, "quantity")
    imf = obj.get("imfFunction") if isinstance(obj, Mapping) else None
    max_leverage = FALLBACK_MAX_LEVERAGE
    if isinstance(imf, Mapping) and imf.get("base") is not None:
        max_leverage = (1 / positive(VENUE, dec(VENUE, imf["base"], "imfFunction.base"), "imfFunction.base")).quantize(
            Decimal("0.01")
        )
    return Market(
        symbol=text(VENUE, obj, "symbol"),
        tick_size=positive(VENUE, dec_field(VENUE, price_filter, "tickSize"), "tickSize"),
        step_size=positive(VENUE, dec_field(VENUE, quantity_filter, "stepSize"), "stepSize"),
        min_quantity=non_negative(VENUE, dec_field(VENUE, quantity_filter, "minQuantity"), "minQuantity"),
        min_notional=Decimal(0),  # Backpack publishes no minimum notional for perps
        max_leverage=max_leverage,
    )


def parse_markets(data: Any) -> list[Market]:
    """The perp markets of GET /api/v1/markets (other market types are skipped)."""
    if not isinstance(data, list):
        raise MalformedResponse(VENUE, "markets: expected an array")
    return [parse_market(m) for m in data if isinstance(m, Mapping) and m.get("marketType") in ("PERP", None)]


def parse_mark_price(data: Any, symbol: str) -> tuple[Decimal, Decimal | None, Any]:
    """(mark, funding rate, next funding time) for `symbol` from GET /api/v1/markPrices (an array)."""
    if not isinstance(data, list):
        raise MalformedResponse(VENUE, "markPrices: expected an array")
    for item in data:
        if isinstance(item, Mapping) and item.get("symbol") == symbol:
            mark = positive(VENUE, dec_field(VENUE, item, "markPrice"), "markPrice")
            next_ts = item.get("nextFundingTimestamp")
            return (
                mark,
                opt_dec(VENUE, item, "fundingRate"),
                from_millis(VENUE, next_ts, "nextFundingTimestamp") if next_ts is not None else None,
            )
    raise MalformedResponse(VENUE, f"markPrices: no entry for {symbol}")


def parse_depth_top(data: Any) -> tuple[Decimal | None, Decimal | None]:
    """Best bid and ask of GET /api/v1/depth; sorted locally since the side order is unspecified."""

    def prices(key: str) -> list[Decimal]:
        levels = field(VENUE, data, key)
        if not isinstance(levels, list):
            raise MalformedResponse(VENUE, f"depth.{key}: expected an array")
        out = []
        for level in levels:
            if not isinstance(level, list) or len(level) != 2:
                raise MalformedResponse(VENUE, f"depth.{key}: a level is not [price, quantity]")
            if dec(VENUE, level[1], "quantity") > 0:
                out.append(positive(VENUE, dec(VENUE, level[0], "price"), "price"))
        return out

    bids, asks = prices("bids"), prices("asks")
    return (max(bids) if bids else None, min(asks) if asks else None)


def _created_at(obj: Any) -> datetime | None:
    """`createdAt`: epoch ms on the live-order endpoints, a naive ISO string in order history (spec §3).
    Absent or in neither form: None (the age rule then cannot disown the order, and the order still parses)."""
    value = obj.get("createdAt") if isinstance(obj, Mapping) else None
    try:
        if isinstance(value, int) and not isinstance(value, bool):
            return from_millis(VENUE, value, "createdAt")
        if isinstance(value, str):
            if value.isascii() and value.isdigit():
                return from_millis(VENUE, int(value), "createdAt")
            return from_naive_iso(VENUE, value, "createdAt")
    except MalformedResponse:
        return None
    return None


def status_field(obj: Any, key: str) -> OrderStatus:
    """An order status (an order object's `status`, an order update's `X`)."""
    value = text(VENUE, obj, key)
    if value not in _STATUS:
        raise MalformedResponse(VENUE, f"{key}: unknown status {value[:20]!r}")
    return _STATUS[value]


def parse_order(obj: Any) -> OrderResult:
    """An order object (place, query, cancel, history)."""
    status = status_field(obj, "status")
    executed = non_negative(VENUE, opt_dec(VENUE, obj, "executedQuantity") or Decimal(0), "executedQuantity")
    executed_quote = opt_dec(VENUE, obj, "executedQuoteQuantity") or Decimal(0)
    quantity = opt_dec(VENUE, obj, "quantity")
    if quantity is None:
        quantity = executed
    if executed > quantity:
        raise MalformedResponse(VENUE, f"executedQuantity {executed} exceeds quantity {quantity}")
    client_id = obj.get("clientId")
    return OrderResult(
        venue_order_id=str(integer(VENUE, field(VENUE, obj, "id"), "id")),
        client_id=None if client_id is None else str(integer(VENUE, client_id, "clientId")),
        symbol=text(VENUE, obj, "symbol"),
        side=_side(field(VENUE, obj, "side")),
        status=status,
        quantity=quantity,
        filled_quantity=executed,
        average_price=positive(VENUE, executed_quote / executed, "average price") if executed > 0 else None,
        created_at=_created_at(obj),
    )


def find_order_by_client_id(data: Any, client_id: str) -> OrderResult | None:
    """The order with `client_id` in an order-history array, or None."""
    if not isinstance(data, list):
        raise MalformedResponse(VENUE, "order history: expected an array")
    for item in data:
        if isinstance(item, Mapping) and item.get("clientId") is not None and str(item["clientId"]) == client_id:
            return parse_order(item)
    return None


def parse_positions(data: Any) -> list[Position]:
    """GET /api/v1/position: one entry per open (netted) position; flat ones are skipped."""
    if not isinstance(data, list):
        raise MalformedResponse(VENUE, "position: expected an array")
    out = []
    for item in data:
        net = dec_field(VENUE, item, "netQuantity")
        if net == 0:
            continue
        liq = opt_dec(VENUE, item, "estLiquidationPrice")
        out.append(
            Position(
                symbol=text(VENUE, item, "symbol"),
                side=Side.LONG if net > 0 else Side.SHORT,
                quantity=abs(net),
                entry_price=positive(VENUE, dec_field(VENUE, item, "entryPrice"), "entryPrice"),
                mark_price=opt_dec(VENUE, item, "markPrice"),
                unrealized_pnl=opt_dec(VENUE, item, "pnlUnrealized"),
                # "0" is what Backpack sends when it has no estimate (spec §3.3: always, in the all-symbol list):
                # unknown, never a price; so is anything else that no price can be.
                liquidation_price=liq if liq is not None and liq > 0 else None,
            )
        )
    return out


def margin_requirements(imf: Decimal, mmf: Decimal, exposure: Decimal) -> tuple[Decimal, Decimal]:
    """(initial, maintenance) requirement in USD from the account's fractions and futures exposure.

    UNCERTAIN (spec §3.3): [OA] calls imf/mmf the account's initial and maintenance margin fractions and
    netExposureFutures its exposure; it does not state the liquidation rule. We take requirement =
    fraction * exposure, so equity / maintenance is the collateral ratio (1.0 = liquidation).
    """
    return imf * exposure, mmf * exposure


def parse_collateral(obj: Any) -> Account:
    """GET /api/v1/capital/collateral."""
    exposure = abs(dec_field(VENUE, obj, "netExposureFutures"))
    initial, maintenance = margin_requirements(
        non_negative(VENUE, dec_field(VENUE, obj, "imf"), "imf"),
        non_negative(VENUE, dec_field(VENUE, obj, "mmf"), "mmf"),
        exposure,
    )
    return Account(
        equity=dec_field(VENUE, obj, "netEquity"),
        available=dec_field(VENUE, obj, "netEquityAvailable"),
        initial_requirement=initial,
        maintenance_requirement=maintenance,
        margin_fraction=opt_dec(VENUE, obj, "marginFraction"),
    )


BPS = Decimal(10_000)


def maker_flag(value: Any, name: str) -> bool | None:
    """A fill's maker flag (wire.flag)."""
    return flag(VENUE, value, name)


def parse_fee_rates(obj: Any) -> FeeRates:
    """GET /api/v1/account: `futuresMakerFee`/`futuresTakerFee` in basis points (negative: a rebate)."""
    maker = dec_field(VENUE, obj, "futuresMakerFee") / BPS
    taker = dec_field(VENUE, obj, "futuresTakerFee") / BPS
    return FeeRates(maker=maker, taker=taker)


def parse_fills(data: Any) -> list[Fill]:
    """GET /wapi/v1/history/fills."""
    if not isinstance(data, list):
        raise MalformedResponse(VENUE, "fills: expected an array")
    out = []
    for item in data:
        client_id = item.get("clientId") if isinstance(item, Mapping) else None
        trade_id = item.get("tradeId") if isinstance(item, Mapping) else None
        order_id = str(integer(VENUE, field(VENUE, item, "orderId"), "orderId"))
        ts = from_naive_iso(VENUE, field(VENUE, item, "timestamp"), "timestamp")
        out.append(
            Fill(
                # System fills may lack a trade id; the order id and time identify them then.
                venue_fill_id=str(integer(VENUE, trade_id, "tradeId")) if trade_id is not None else f"{order_id}@{ts}",
                venue_order_id=order_id,
                client_id=None if client_id is None else str(integer(VENUE, client_id, "clientId")),
                symbol=text(VENUE, item, "symbol"),
                side=_side(field(VENUE, item, "side")),
                price=positive(VENUE, dec_field(VENUE, item, "price"), "price"),
                quantity=positive(VENUE, dec_field(VENUE, item, "quantity"), "quantity"),
                fee=dec_field(VENUE, item, "fee"),
                fee_asset=item.get("feeSymbol"),
                is_maker=maker_flag(item.get("isMaker"), "isMaker"),
                ts=ts,
            )
        )
    return out


def parse_funding(data: Any) -> list[FundingPayment]:
    """GET /wapi/v1/history/funding: quantity > 0 received, < 0 paid."""
    if not isinstance(data, list):
        raise MalformedResponse(VENUE, "funding: expected an array")
    return [
        FundingPayment(
            symbol=text(VENUE, item, "symbol"),
            amount=dec_field(VENUE, item, "quantity"),
            rate=opt_dec(VENUE, item, "fundingRate"),
            ts=from_naive_iso(VENUE, field(VENUE, item, "intervalEndTimestamp"), "intervalEndTimestamp"),
        )
        for item in data
    ]


def parse_ws_message(raw: str | bytes) -> QuoteUpdate | None:
    """A websocket frame: a QuoteUpdate for bookTicker/markPrice, None for other streams.

    A subscription error frame raises VenueError so the feed logs it instead of waiting silently.
    """
    try:
        msg = json.loads(raw)
    except ValueError:
        raise MalformedResponse(VENUE, "websocket frame is not JSON") from None
    if not isinstance(msg, Mapping):
        raise MalformedResponse(VENUE, "websocket frame is not an object")
    if "error" in msg:
        err = msg["error"] if isinstance(msg["error"], Mapping) else {}
        raise VenueError(VENUE, f"websocket error: {str(err.get('message'))[:200]}", code=err.get("code"))
    stream = msg.get("stream")
    data = msg.get("data")
    if not isinstance(stream, str) or not isinstance(data, Mapping):
        return None
    kind = stream.split(".", 1)[0]
    if kind == "bookTicker":
        return QuoteUpdate(
            symbol=text(VENUE, data, "s"),
            ts=from_micros(VENUE, field(VENUE, data, "E"), "E"),
            bid=positive(VENUE, dec_field(VENUE, data, "b"), "b"),
            ask=positive(VENUE, dec_field(VENUE, data, "a"), "a"),
        )
    if kind == "markPrice":
        next_ts = data.get("n")
        return QuoteUpdate(
            symbol=text(VENUE, data, "s"),
            ts=from_micros(VENUE, field(VENUE, data, "E"), "E"),
            mark=positive(VENUE, dec_field(VENUE, data, "p"), "p"),
            funding_rate=opt_dec(VENUE, data, "f"),
            next_funding_time=from_millis(VENUE, next_ts, "n") if next_ts is not None else None,
        )
    return None
