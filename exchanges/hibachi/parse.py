"""Hibachi JSON -> venue-neutral types (spec §3-§5). Pure; the wire's field names stay in this file.

Where the spec lists conflicting sources (§7), the choice is made once here and marked UNCERTAIN.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
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
from exchanges.hibachi.signing import Contract
from exchanges.quotes import QuoteUpdate
from exchanges.wire import (
    dec,
    dec_field,
    field,
    flag,
    from_millis,
    from_seconds,
    integer,
    non_negative,
    opt_dec,
    positive,
    text,
)

VENUE = "hibachi"
NORMAL = "NORMAL"
LIVE = "LIVE"  # a contract's status while it trades

SIDE_TO_WIRE = {Side.LONG: "BID", Side.SHORT: "ASK"}
_SIDE_FROM_WIRE = {"BID": Side.LONG, "ASK": Side.SHORT}
_TRADE_SIDE = {"Buy": Side.LONG, "Sell": Side.SHORT}
_DIRECTION = {"Long": Side.LONG, "Short": Side.SHORT}
_STATUS = {
    "PENDING": OrderStatus.NEW,
    "PLACED": OrderStatus.NEW,
    "CHILD_PENDING": OrderStatus.NEW,
    "SCHEDULED_TWAP": OrderStatus.NEW,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELLED": OrderStatus.CANCELLED,
    "REJECTED": OrderStatus.REJECTED,
}

# Error codes seen (spec §4): 2 bad signature, 3 not found, 4 invalid input.
CODE_BAD_SIGNATURE = 2
CODE_NOT_FOUND = 3
CODE_INVALID_INPUT = 4


@dataclass(frozen=True, slots=True)
class ExchangeInfo:
    """What GET /market/exchange-info says: trading status, every contract by symbol (those not trading too: what
    is held there must still be read), which of them are tradable, and fee rates."""

    status: str
    contracts: dict[str, Contract]
    maker_fee: Decimal
    taker_fee: Decimal
    maintenance_note: str | None = None
    tradable: frozenset[str] = frozenset()

    @property
    def max_fee_rate(self) -> Decimal:
        """The highest rate any fill may be charged: what maxFeesPercent must cover (CCXT sends the same)."""
        return max(self.maker_fee, self.taker_fee).normalize()


def classify_rejection(status: int, code: int | None, message: str) -> type[VenueError]:
    """Which typed error a 4xx body means.

    UNCERTAIN (spec §4 lists only codes 2, 3 and 4): Hibachi publishes no code for a margin shortfall or a
    bad nonce, so both are recognised by their message; the simulator words them the same way.
    """
    lowered = message.lower()
    if status == 401 or code == CODE_BAD_SIGNATURE:
        return AuthError
    if "nonce" in lowered:
        return AuthError  # outside the server's window or reused: a clock or program fault, not the order's
    if "insufficient" in lowered:
        return InsufficientMargin
    if status == 404 or code == CODE_NOT_FOUND:
        return OrderNotFound
    return InvalidOrder


def parse_error(status: int, body: str, retry_after: str | None = None) -> VenueError:
    """The typed error for a non-2xx reply: `{errorCode, message, status}`, a 429 counter body, or text."""
    code: int | None = None
    message = body.strip()[:300] or f"HTTP {status}"
    try:
        obj = json.loads(body)
    except ValueError:
        obj = None
    if isinstance(obj, Mapping):
        raw_code = obj.get("errorCode")
        if isinstance(raw_code, int) and not isinstance(raw_code, bool):
            code = raw_code
        if isinstance(obj.get("message"), str):
            message = obj["message"][:300]
    kw: dict[str, Any] = {"code": code, "http_status": status}
    if status == 429:
        seconds: float | None = None
        if retry_after is not None:
            try:
                seconds = max(0.0, float(retry_after))
            except ValueError:
                seconds = None
        # The 429 body is {name, count, limit, windowDuration}; windowDuration's unit is not documented,
        # so only a Retry-After header is trusted as a delay.
        return RateLimited(VENUE, message, retry_after=seconds, **kw)
    if status >= 500:
        return VenueUnavailable(VENUE, message, **kw)
    return classify_rejection(status, code, message)(VENUE, message, **kw)


def _side(value: Any, table: Mapping[str, Side], name: str) -> Side:
    if not isinstance(value, str) or value not in table:
        raise MalformedResponse(VENUE, f"{name}: unknown value {str(value)[:20]!r}")
    return table[value]


def _order_id(value: Any) -> str:
    """orderIds (~5.8e17) arrive as strings or numbers; kept as digit strings."""
    return str(integer(VENUE, value, "orderId"))


def _rate(obj: Any, new: str, old: str) -> Decimal | None:
    """UNCERTAIN (spec §7 item 4): contracts carry `initialMarginRate`/`maintenanceMarginRate`, older ones
    `riskFactorForOrders`/`maintenanceFactorForPositions`. The new name wins; the old one is the fallback."""
    value = opt_dec(VENUE, obj, new)
    return value if value is not None else opt_dec(VENUE, obj, old)


def parse_contract(obj: Any) -> Contract:
    """One element of exchange-info `futureContracts`."""
    imr = _rate(obj, "initialMarginRate", "riskFactorForOrders")
    if imr is None:
        raise MalformedResponse(VENUE, "contract: missing initialMarginRate")
    return Contract(
        id=integer(VENUE, field(VENUE, obj, "id"), "id"),
        symbol=text(VENUE, obj, "symbol"),
        underlying_decimals=integer(VENUE, field(VENUE, obj, "underlyingDecimals"), "underlyingDecimals"),
        settlement_decimals=integer(VENUE, field(VENUE, obj, "settlementDecimals"), "settlementDecimals"),
        tick_size=positive(VENUE, dec_field(VENUE, obj, "tickSize"), "tickSize"),
        step_size=positive(VENUE, dec_field(VENUE, obj, "stepSize"), "stepSize"),
        min_order_size=non_negative(VENUE, dec_field(VENUE, obj, "minOrderSize"), "minOrderSize"),
        min_notional=non_negative(VENUE, dec_field(VENUE, obj, "minNotional"), "minNotional"),
        initial_margin_rate=positive(VENUE, imr, "initialMarginRate"),
        maintenance_margin_rate=_rate(obj, "maintenanceMarginRate", "maintenanceFactorForPositions"),
    )


def is_tradable(obj: Any) -> bool:
    """Whether a futureContracts entry may be traded: only when its `status` is "LIVE" (spec §3).

    UNCERTAIN: the OpenAPI example shows no `status`, only `live: true`; an entry without a status is taken as
    tradable only when that flag is true.
    """
    if not isinstance(obj, Mapping):
        return False
    if "status" in obj:
        return obj["status"] == LIVE
    return obj.get("live") is True


def parse_exchange_info(obj: Any) -> ExchangeInfo:
    """GET /market/exchange-info."""
    fees = field(VENUE, obj, "feeConfig")
    contracts = field(VENUE, obj, "futureContracts")
    if not isinstance(contracts, list):
        raise MalformedResponse(VENUE, "futureContracts: expected an array")
    parsed = [parse_contract(c) for c in contracts]
    note = None
    current = obj.get("currentMaintenanceWindow")
    if isinstance(current, Mapping) and isinstance(current.get("note"), str):
        note = current["note"]
    return ExchangeInfo(
        status=text(VENUE, obj, "status"),
        contracts={c.symbol: c for c in parsed},
        tradable=frozenset(c.symbol for c, raw in zip(parsed, contracts, strict=True) if is_tradable(raw)),
        maker_fee=non_negative(VENUE, dec_field(VENUE, fees, "tradeMakerFeeRate"), "tradeMakerFeeRate"),
        taker_fee=non_negative(VENUE, dec_field(VENUE, fees, "tradeTakerFeeRate"), "tradeTakerFeeRate"),
        maintenance_note=note,
    )


def contract_market(contract: Contract) -> Market:
    """The venue-neutral rules of a contract (max leverage = 1 / initial margin rate)."""
    return Market(
        symbol=contract.symbol,
        tick_size=contract.tick_size,
        step_size=contract.step_size,
        min_quantity=contract.min_order_size,
        min_notional=contract.min_notional,
        max_leverage=(1 / contract.initial_margin_rate).quantize(Decimal("0.01")),
    )


def parse_prices(obj: Any) -> tuple[Decimal | None, Decimal | None, Decimal, Decimal | None, datetime | None]:
    """(bid, ask, mark, funding rate, next funding time) from GET /market/data/prices."""
    mark = positive(VENUE, dec_field(VENUE, obj, "markPrice"), "markPrice")
    rate: Decimal | None = None
    next_funding: datetime | None = None
    funding = obj.get("fundingRateEstimation")
    if isinstance(funding, Mapping):
        rate = opt_dec(VENUE, funding, "estimatedFundingRate")
        if funding.get("nextFundingTimestamp") is not None:
            next_funding = from_seconds(VENUE, funding["nextFundingTimestamp"], "nextFundingTimestamp")
    return opt_dec(VENUE, obj, "bidPrice"), opt_dec(VENUE, obj, "askPrice"), mark, rate, next_funding


def _positions_json(obj: Any) -> list[Any]:
    positions = obj.get("positions", []) if isinstance(obj, Mapping) else None
    if not isinstance(positions, list):
        raise MalformedResponse(VENUE, "account info: positions must be an array")
    return positions


def parse_account(obj: Any, contracts: Mapping[str, Contract]) -> Account:
    """GET /trade/account/info. When the newer `initialMargin`/`maintenanceMargin` fields are absent the
    requirements are computed from each position's notional and its contract's rates (spec §3, §6)."""
    equity = dec_field(VENUE, obj, "balance")
    initial = opt_dec(VENUE, obj, "initialMargin")
    maintenance = opt_dec(VENUE, obj, "maintenanceMargin")
    if initial is None or maintenance is None:
        custom = {
            item.get("symbol"): dec(VENUE, item.get("initialMarginRate"), "leverages.initialMarginRate")
            for item in (obj.get("leverages") or [])
            if isinstance(item, Mapping)
        }
        initial_sum = maintenance_sum = Decimal(0)
        for item in _positions_json(obj):
            symbol = text(VENUE, item, "symbol")
            notional = abs(dec_field(VENUE, item, "notionalValue"))
            contract = contracts.get(symbol)
            if contract is None:
                raise MalformedResponse(VENUE, f"account info: position in unknown contract {symbol}")
            initial_sum += notional * custom.get(symbol, contract.initial_margin_rate)
            maintenance_sum += notional * (contract.maintenance_margin_rate or contract.initial_margin_rate)
        initial = initial if initial is not None else initial_sum
        maintenance = maintenance if maintenance is not None else maintenance_sum
    exposure = opt_dec(VENUE, obj, "totalPositionNotional")
    return Account(
        equity=equity,
        available=dec_field(VENUE, obj, "maximalWithdraw"),
        initial_requirement=non_negative(VENUE, initial, "initialMargin"),
        maintenance_requirement=non_negative(VENUE, maintenance, "maintenanceMargin"),
        margin_fraction=(equity / exposure) if exposure else None,
    )


def parse_positions(obj: Any) -> list[Position]:
    """The `positions` of GET /trade/account/info (quantity unsigned, direction Long|Short)."""
    out = []
    for item in _positions_json(obj):
        quantity = non_negative(VENUE, dec_field(VENUE, item, "quantity"), "quantity")
        if quantity == 0:
            continue
        entry = opt_dec(VENUE, item, "openPrice")
        if entry is None:
            entry = dec_field(VENUE, item, "entryNotional") / quantity
        mark = opt_dec(VENUE, item, "markPrice")
        notional = opt_dec(VENUE, item, "notionalValue")
        if mark is None and notional is not None:
            mark = abs(notional) / quantity
        out.append(
            Position(
                symbol=text(VENUE, item, "symbol"),
                side=_side(field(VENUE, item, "direction"), _DIRECTION, "direction"),
                quantity=quantity,
                entry_price=positive(VENUE, entry, "entry price"),
                mark_price=mark,
                unrealized_pnl=opt_dec(VENUE, item, "unrealizedTradingPnl"),
                liquidation_price=None,  # Hibachi reports none: portfolio margin has one account-wide line
            )
        )
    return out


def _created_at(obj: Any) -> datetime | None:
    """`creationTime` (epoch seconds, whole) of an order, or history's `createdAt` (epoch ms). Absent or
    unreadable: None (the age rule then cannot disown the order, and the order still parses)."""
    try:
        if obj.get("creationTime") is not None:
            return from_seconds(VENUE, obj["creationTime"], "creationTime")
        if obj.get("createdAt") is not None:
            return from_millis(VENUE, obj["createdAt"], "createdAt")
    except MalformedResponse:
        return None
    return None


def parse_order(obj: Any) -> OrderResult:
    """One order of GET /trade/order or /trade/orders. Filled = total - available, which the spec defines only
    while the order is open (and, trivially, once FILLED): for an order that ended otherwise the client reads
    the fill from order history (`history_fill`), and refines it (average price, fee) from the trade journal."""
    total = positive(VENUE, dec_field(VENUE, obj, "totalQuantity"), "totalQuantity")
    available = opt_dec(VENUE, obj, "availableQuantity")
    status_text = text(VENUE, obj, "status")
    if status_text not in _STATUS:
        raise MalformedResponse(VENUE, f"status: unknown value {status_text[:30]!r}")
    status = _STATUS[status_text]
    filled = total if status is OrderStatus.FILLED else total - (available if available is not None else total)
    client_id = obj.get("clientId")
    return OrderResult(
        venue_order_id=_order_id(field(VENUE, obj, "orderId")),
        client_id=client_id if isinstance(client_id, str) and client_id else None,
        symbol=text(VENUE, obj, "symbol"),
        side=_side(field(VENUE, obj, "side"), _SIDE_FROM_WIRE, "side"),
        status=status,
        quantity=total,
        filled_quantity=non_negative(VENUE, filled, "filled quantity"),
        average_price=None,
        created_at=_created_at(obj),
    )


@dataclass(frozen=True, slots=True)
class HistoryFill:
    """What order history says a finished order filled: quantity and average price (None if nothing filled)."""

    quantity: Decimal
    average_price: Decimal | None


def history_fill(obj: Any, order_id: str) -> HistoryFill | None:
    """The fill of order `order_id` in GET /trade/orders/history (`{hasMore, orders[...]}`), None if absent."""
    orders = field(VENUE, obj, "orders")
    if not isinstance(orders, list):
        raise MalformedResponse(VENUE, "order history: orders must be an array")
    for item in orders:
        if _order_id(field(VENUE, item, "orderId")) != order_id:
            continue
        filled = non_negative(VENUE, dec_field(VENUE, item, "filledQuantity"), "filledQuantity")
        total = opt_dec(VENUE, item, "totalQuantity")
        if total is not None and filled > total:
            raise MalformedResponse(VENUE, f"order history: filledQuantity {filled} exceeds totalQuantity {total}")
        average = opt_dec(VENUE, item, "avgFillPrice") if filled else None
        return HistoryFill(filled, None if average is None else positive(VENUE, average, "avgFillPrice"))
    return None


def parse_placed_order_id(obj: Any) -> str:
    """POST /trade/order answers `{"orderId": "..."}`."""
    return _order_id(field(VENUE, obj, "orderId"))


def _trade_time(item: Any) -> datetime:
    ts = from_seconds(VENUE, field(VENUE, item, "timestamp"), "timestamp")
    partial = item.get("timestamp_ns_partial")
    if partial is not None:
        ts += timedelta(microseconds=integer(VENUE, partial, "timestamp_ns_partial") // 1000)
    return ts


def trade_items(obj: Any) -> list[Any]:
    """GET /trade/account/trades: the raw journal entries, unparsed (a page holds up to 100 of them)."""
    trades = field(VENUE, obj, "trades")
    if not isinstance(trades, list):
        raise MalformedResponse(VENUE, "trades: expected an array")
    return trades


def trade_journal_id(item: Any) -> int:
    """A journal entry's id, the cursor for paging backwards."""
    return integer(VENUE, field(VENUE, item, "id"), "id")


def may_belong_to(item: Any, order_id: str) -> bool:
    """Cheap pre-check before parsing an entry: does either order id field name `order_id`? (The exact test,
    on our own side's id, is made on the parsed fill.)"""
    if not isinstance(item, dict):
        return True  # not an entry at all: let the full parse report it
    for key in ("bidOrderId", "askOrderId"):
        value = item.get(key)
        if value is None:
            continue
        try:
            if _order_id(value) == order_id:
                return True
        except MalformedResponse:
            return True  # let the full parse report it
    return False


def taker_flag(value: Any) -> bool | None:
    """A trade's `isTaker` (wire.flag)."""
    return flag(VENUE, value, "isTaker")


def maker_of(trade: Mapping[str, Any]) -> bool | None:
    """Whether a trade (journal entry or stream event) was ours as maker, from its `isTaker`; None if unsaid."""
    is_taker = taker_flag(trade.get("isTaker"))
    return None if is_taker is None else not is_taker


def parse_fee_rates(account_info: Any, info: ExchangeInfo) -> FeeRates:
    """The account's `tradeMakerFeeRate`/`tradeTakerFeeRate` (fractions) from /trade/account/info; each one the
    venue leaves null (spec §6: they may be) falls back to exchange-info's feeConfig rate."""
    maker = opt_dec(VENUE, account_info, "tradeMakerFeeRate")
    taker = opt_dec(VENUE, account_info, "tradeTakerFeeRate")
    return FeeRates(
        maker=info.maker_fee if maker is None else maker,
        taker=info.taker_fee if taker is None else taker,
    )


def parse_trade(item: Any) -> Fill:
    """One journal entry. Only our own side's order id is set (SDK 0.3.2), so it is the one for `side`."""
    side = _side(field(VENUE, item, "side"), _TRADE_SIDE, "side")
    order_key = "bidOrderId" if side is Side.LONG else "askOrderId"
    return Fill(
        venue_fill_id=str(trade_journal_id(item)),
        venue_order_id=_order_id(field(VENUE, item, order_key)),
        client_id=None,
        symbol=text(VENUE, item, "symbol"),
        side=side,
        price=positive(VENUE, dec_field(VENUE, item, "price"), "price"),
        quantity=positive(VENUE, dec_field(VENUE, item, "quantity"), "quantity"),
        fee=dec_field(VENUE, item, "fee"),
        fee_asset="USDT",
        is_maker=maker_of(item),
        ts=_trade_time(item),
    )


def parse_trades(obj: Any) -> list[Fill]:
    """GET /trade/account/trades, every entry parsed."""
    return [parse_trade(item) for item in trade_items(obj)]


def parse_settlements(obj: Any) -> list[FundingPayment]:
    """GET /trade/account/settlements_history: funding payments (settledAmount signed, > 0 received)."""
    items = field(VENUE, obj, "settlements")
    if not isinstance(items, list):
        raise MalformedResponse(VENUE, "settlements: expected an array")
    return [
        FundingPayment(
            symbol=text(VENUE, item, "symbol"),
            amount=dec_field(VENUE, item, "settledAmount"),
            rate=None,  # settlements carry the index price, not the rate
            ts=from_seconds(VENUE, field(VENUE, item, "timestamp"), "timestamp"),
        )
        for item in items
    ]


def parse_server_time_ms(obj: Any) -> int:
    """GET /exchange/utc-timestamp: `{"timestampMs": N}`."""
    return integer(VENUE, field(VENUE, obj, "timestampMs"), "timestampMs")


def parse_ws_message(raw: str | bytes, now: datetime) -> QuoteUpdate | None:
    """A market-websocket push `{symbol, topic, data}` -> QuoteUpdate; None for other messages.

    Pushes carry no timestamp of their own (spec §5: no official schema), so `now` stamps them.
    """
    try:
        msg = json.loads(raw)
    except ValueError:
        raise MalformedResponse(VENUE, "websocket: frame is not JSON") from None
    if not isinstance(msg, Mapping) or "topic" not in msg or "data" not in msg:
        return None
    topic, data = msg["topic"], msg["data"]
    symbol = text(VENUE, msg, "symbol")
    if topic == "mark_price":
        return QuoteUpdate(symbol, now, mark=positive(VENUE, dec_field(VENUE, data, "markPrice"), "markPrice"))
    if topic == "ask_bid_price":
        return QuoteUpdate(
            symbol,
            now,
            bid=positive(VENUE, dec_field(VENUE, data, "bidPrice"), "bidPrice"),
            ask=positive(VENUE, dec_field(VENUE, data, "askPrice"), "askPrice"),
        )
    return None
