"""Hibachi parsing and nonces: wire JSON to typed values, error classification, spec §7 fallbacks."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from core.clock import FakeClock
from core.domain import Side
from exchanges.base import OrderStatus
from exchanges.errors import (
    AuthError,
    InsufficientMargin,
    InvalidOrder,
    MalformedResponse,
    OrderNotFound,
    RateLimited,
    VenueUnavailable,
)
from exchanges.hibachi import parse
from exchanges.hibachi.nonce import NonceSource

CONTRACT = {
    "id": 2, "symbol": "BTC/USDT-P", "underlyingDecimals": 10, "settlementDecimals": 6, "tickSize": "0.1",
    "stepSize": "0.0000000001", "minOrderSize": "0.0000000001", "minNotional": "1",
    "initialMarginRate": "0.066667", "maintenanceMarginRate": "0.046667", "live": True,
}  # fmt: skip


def _info(**contract: object) -> dict[str, object]:
    return {
        "status": "NORMAL",
        "feeConfig": {"tradeMakerFeeRate": "0.00015000", "tradeTakerFeeRate": "0.00045000"},
        "futureContracts": [CONTRACT | contract],
    }


def test_exchange_info_contracts_and_fees() -> None:
    info = parse.parse_exchange_info(_info())
    btc = info.contracts["BTC/USDT-P"]
    assert (btc.id, btc.tick_size, btc.initial_margin_rate) == (2, D("0.1"), D("0.066667"))
    assert info.max_fee_rate == D("0.00045")
    assert parse.contract_market(btc).max_leverage == D("15.00")


def test_old_risk_field_names_are_the_fallback() -> None:
    old = {k: v for k, v in CONTRACT.items() if k not in ("initialMarginRate", "maintenanceMarginRate")}
    data = _info() | {
        "futureContracts": [old | {"riskFactorForOrders": "0.1", "maintenanceFactorForPositions": "0.05"}]
    }
    btc = parse.parse_exchange_info(data).contracts["BTC/USDT-P"]
    assert (btc.initial_margin_rate, btc.maintenance_margin_rate) == (D("0.1"), D("0.05"))
    with pytest.raises(MalformedResponse, match="initialMarginRate"):
        parse.parse_exchange_info(_info() | {"futureContracts": [old]})


def test_floats_are_refused_for_money() -> None:
    with pytest.raises(MalformedResponse, match="tickSize"):
        parse.parse_exchange_info(_info(tickSize=0.1))


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (400, {"errorCode": 2, "message": "Invalid signature", "status": "failed"}, AuthError, 2),
        (401, {"errorCode": 1, "message": "Invalid API key", "status": "failed"}, AuthError, 1),
        (404, {"errorCode": 3, "message": "order ID 33", "status": "failed"}, OrderNotFound, 3),
        (400, {"errorCode": 4, "message": "Invalid quantity: 0", "status": "failed"}, InvalidOrder, 4),
        (422, {"errorCode": 4, "message": "Missing accountId", "status": "failed"}, InvalidOrder, 4),
        (400, {"errorCode": 4, "message": "Insufficient margin: needs 10", "status": "failed"}, InsufficientMargin, 4),
        (400, {"errorCode": 4, "message": "Invalid nonce 5: already used", "status": "failed"}, AuthError, 4),
        (503, {"message": "maintenance"}, VenueUnavailable, None),
        (502, "<html>bad gateway</html>", VenueUnavailable, None),
        (429, {"name": "default", "count": 11, "limit": 10, "windowDuration": 1000}, RateLimited, None),
    ],
)
def test_error_classification(status: int, body: object, kind: type, code: int | None) -> None:
    raw = body if isinstance(body, str) else json.dumps(body)
    error = parse.parse_error(status, raw)
    assert type(error) is kind
    assert (error.code, error.http_status) == (code, status)


def test_rate_limit_uses_retry_after_only() -> None:
    error = parse.parse_error(429, json.dumps({"windowDuration": 1000}), "2.5")
    assert isinstance(error, RateLimited) and error.retry_after == 2.5
    assert parse.parse_error(429, "{}").retry_after is None  # type: ignore[attr-defined]


def test_order_ids_as_numbers_or_strings() -> None:
    base = {"symbol": "BTC/USDT-P", "side": "ASK", "status": "PARTIALLY_FILLED", "totalQuantity": "1",
            "availableQuantity": "0.25", "clientId": None}  # fmt: skip
    as_text = parse.parse_order(base | {"orderId": "582870002718998528"})
    as_number = parse.parse_order(base | {"orderId": 582870002718998528})
    assert as_text == as_number
    assert (as_text.side, as_text.status, as_text.filled_quantity, as_text.client_id) == (
        Side.SHORT, OrderStatus.PARTIALLY_FILLED, D("0.75"), None,
    )  # fmt: skip
    with pytest.raises(MalformedResponse, match="status"):
        parse.parse_order(base | {"orderId": "1", "status": "WEIRD"})


def test_trades_use_our_own_order_id_and_sub_second_time() -> None:
    data = {"trades": [{
        "id": 7, "symbol": "ETH/USDT-P", "side": "Sell", "price": "2369.078949", "quantity": "0.398074810",
        "fee": "0.141460", "timestamp": 1728516134, "timestamp_ns_partial": 250_000_000, "isTaker": True,
        "askOrderId": 582869893016453100, "bidOrderId": None,
    }]}  # fmt: skip
    (fill,) = parse.parse_trades(data)
    assert (fill.venue_order_id, fill.side, fill.is_maker, fill.fee) == ("582869893016453100", Side.SHORT, False,
                                                                         D("0.141460"))  # fmt: skip
    assert fill.ts == datetime(2024, 10, 9, 23, 22, 14, 250000, tzinfo=UTC)


def test_account_requirements_fall_back_to_contract_rates() -> None:
    contracts = parse.parse_exchange_info(_info()).contracts
    info = {
        "balance": "1000", "maximalWithdraw": "900", "totalPositionNotional": "500",
        "positions": [{"symbol": "BTC/USDT-P", "direction": "Short", "quantity": "0.01", "entryNotional": "650",
                       "notionalValue": "500", "unrealizedTradingPnl": "150"}],
        "leverages": [{"symbol": "BTC/USDT-P", "initialMarginRate": "0.5"}],
    }  # fmt: skip
    account = parse.parse_account(info, contracts)
    assert account.initial_requirement == D("250.0")  # custom 2x rate
    assert account.maintenance_requirement == D("500") * D("0.046667")
    assert account.margin_fraction == D(2)
    (pos,) = parse.parse_positions(info)
    assert (pos.side, pos.entry_price, pos.mark_price) == (Side.SHORT, D(65000), D(50000))
    with_fields = parse.parse_account(info | {"initialMargin": "1", "maintenanceMargin": "2"}, contracts)
    assert (with_fields.initial_requirement, with_fields.maintenance_requirement) == (D(1), D(2))


def test_ws_messages() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    mark = parse.parse_ws_message('{"symbol":"BTC/USDT-P","topic":"mark_price","data":{"markPrice":"65000.1"}}', now)
    assert mark is not None and mark.mark == D("65000.1") and mark.ts == now
    top = parse.parse_ws_message(
        '{"symbol":"BTC/USDT-P","topic":"ask_bid_price","data":{"bidPrice":"1","bidSize":"2","askPrice":"3",'
        '"askSize":"4"}}', now,
    )  # fmt: skip
    assert top is not None and (top.bid, top.ask) == (D(1), D(3))
    assert parse.parse_ws_message('{"status":400,"error":"x"}', now) is None
    assert parse.parse_ws_message('{"symbol":"BTC/USDT-P","topic":"trades","data":{}}', now) is None
    with pytest.raises(MalformedResponse):
        parse.parse_ws_message("not json", now)


def test_nonces_increase_strictly_across_threads_on_a_frozen_clock() -> None:
    clock = FakeClock(datetime(2026, 5, 1, tzinfo=UTC))
    source = NonceSource(clock)
    out: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        values = [source.next() for _ in range(500)]
        with lock:
            out.extend(values)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(out)) == 2000
    start = int(datetime(2026, 5, 1, tzinfo=UTC).timestamp()) * 1_000_000
    assert min(out) == start and max(out) == start + 1999


def test_nonce_offset_follows_the_server_and_never_goes_back() -> None:
    clock = FakeClock(datetime(2026, 5, 1, tzinfo=UTC))
    source = NonceSource(clock)
    first = source.next()
    source.set_offset_us(5_000_000)
    assert source.next() == first + 5_000_000
    source.set_offset_us(-5_000_000)
    assert source.next() == first + 5_000_001  # a shrinking offset does not make nonces repeat
    assert source.age_s(first) == pytest.approx(-5.0)
