"""Every venue parse function against hostile input: arbitrary JSON, and valid payloads with one value
replaced by something malformed, partial, oversize or wrong-typed. The only acceptable failure is a typed
VenueError; and an absurd number (negative price, zero quantity) must never come out as a value."""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchanges.backpack import parse as bp
from exchanges.errors import MalformedResponse, VenueError
from exchanges.hibachi import parse as hb
from exchanges.wire import integer

NOW = datetime(2026, 1, 1, tzinfo=UTC)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["", "0", "-1", "1e400", "NaN", "Infinity", "-0.0", "1" * 40, "0x10", " 1 ", "1,5"]),
)  # fmt: skip
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip

BP_MARKET = {"symbol": "BTC_USDC_PERP", "marketType": "PERP", "filters": {
    "price": {"tickSize": "0.1"}, "quantity": {"stepSize": "0.00001", "minQuantity": "0.00001"}},
    "imfFunction": {"base": "0.02"}}  # fmt: skip
BP_ORDER = {"id": "11", "clientId": 5, "symbol": "BTC_USDC_PERP", "side": "Bid", "orderType": "Market",
            "quantity": "0.01", "executedQuantity": "0.01", "executedQuoteQuantity": "650", "status": "Filled",
            "createdAt": 1700000000000}  # fmt: skip
BP_POSITION = {"symbol": "BTC_USDC_PERP", "netQuantity": "0.01", "entryPrice": "65000", "markPrice": "65010",
               "pnlUnrealized": "0.1", "estLiquidationPrice": "30000"}  # fmt: skip
BP_COLLATERAL = {"netEquity": "100", "netEquityAvailable": "90", "imf": "0.02", "mmf": "0.0125",
                 "netExposureFutures": "650", "marginFraction": "0.15"}  # fmt: skip
BP_FILL = {"tradeId": 1, "orderId": "11", "clientId": 5, "symbol": "BTC_USDC_PERP", "side": "Bid", "price": "65000",
           "quantity": "0.01", "fee": "0.3", "feeSymbol": "USDC", "isMaker": False,
           "timestamp": "2026-01-01T00:00:00.000"}  # fmt: skip
BP_FUNDING = {"symbol": "BTC_USDC_PERP", "quantity": "-0.01", "fundingRate": "0.0001",
              "intervalEndTimestamp": "2026-01-01T00:00:00"}  # fmt: skip
BP_WS = {"stream": "bookTicker.BTC_USDC_PERP", "data": {
    "e": "bookTicker", "s": "BTC_USDC_PERP", "a": "1", "A": "1",
    "b": "1", "B": "1", "E": 1700000000000000, "T": 1700000000000000}}  # fmt: skip

HB_CONTRACT = {"id": 2, "symbol": "BTC/USDT-P", "underlyingDecimals": 10, "settlementDecimals": 6,
               "tickSize": "0.1", "stepSize": "0.0000000001", "minOrderSize": "0.0000000001", "minNotional": "1",
               "initialMarginRate": "0.066667", "maintenanceMarginRate": "0.046667"}  # fmt: skip
HB_INFO = {"status": "NORMAL", "feeConfig": {"tradeMakerFeeRate": "0.00015", "tradeTakerFeeRate": "0.00045"},
           "futureContracts": [HB_CONTRACT]}  # fmt: skip
HB_FUNDING = {"estimatedFundingRate": "0.00001", "nextFundingTimestamp": 1712707200}
HB_PRICES = {"symbol": "BTC/USDT-P", "markPrice": "65000", "bidPrice": "64999", "askPrice": "65001",
             "fundingRateEstimation": HB_FUNDING}  # fmt: skip
HB_ACCOUNT = {"balance": "100", "maximalWithdraw": "90", "totalPositionNotional": "650", "positions": [
    {"symbol": "BTC/USDT-P", "direction": "Short", "quantity": "0.01", "entryNotional": "650",
     "notionalValue": "650.1", "unrealizedTradingPnl": "-0.1"}]}  # fmt: skip
HB_ORDER = {"orderId": "578721673790138368", "symbol": "BTC/USDT-P", "side": "ASK", "status": "FILLED",
            "totalQuantity": "0.01", "availableQuantity": "0", "clientId": "pf-1-S-open-0"}  # fmt: skip
HB_TRADES = {"trades": [{"id": 7, "symbol": "BTC/USDT-P", "side": "Sell", "price": "65000", "quantity": "0.01",
                         "fee": "0.29", "timestamp": 1728516134, "timestamp_ns_partial": 5, "isTaker": True,
                         "askOrderId": 578721673790138368, "bidOrderId": None}]}  # fmt: skip
HB_SETTLEMENT = {"symbol": "BTC/USDT-P", "direction": "Short", "quantity": "0.01", "indexPrice": "65000",
                 "settledAmount": "0.01", "timestamp": 1720512543}  # fmt: skip
HB_SETTLEMENTS = {"settlements": [HB_SETTLEMENT]}
HB_WS = {"symbol": "BTC/USDT-P", "topic": "ask_bid_price", "data": {"bidPrice": "1", "askPrice": "2"}}

CONTRACTS = hb.parse_exchange_info(HB_INFO).contracts

CASES: list[tuple[str, Any, Callable[[Any], Any]]] = [
    ("bp.markets", [BP_MARKET], bp.parse_markets),
    ("bp.mark_price", [{"symbol": "BTC_USDC_PERP", "markPrice": "1", "fundingRate": "0.0001",
                        "nextFundingTimestamp": 1700000000000}], lambda d: bp.parse_mark_price(d, "BTC_USDC_PERP")),
    ("bp.depth", {"bids": [["1", "2"]], "asks": [["3", "4"]]}, bp.parse_depth_top),
    ("bp.order", BP_ORDER, bp.parse_order),
    ("bp.find_order", [BP_ORDER], lambda d: bp.find_order_by_client_id(d, "5")),
    ("bp.positions", [BP_POSITION], bp.parse_positions),
    ("bp.collateral", BP_COLLATERAL, bp.parse_collateral),
    ("bp.fills", [BP_FILL], bp.parse_fills),
    ("bp.funding", [BP_FUNDING], bp.parse_funding),
    ("bp.ws", BP_WS, lambda d: bp.parse_ws_message(json.dumps(d))),
    ("hb.exchange_info", HB_INFO, hb.parse_exchange_info),
    ("hb.prices", HB_PRICES, hb.parse_prices),
    ("hb.account", HB_ACCOUNT, lambda d: hb.parse_account(d, CONTRACTS)),
    ("hb.positions", HB_ACCOUNT, hb.parse_positions),
    ("hb.order", HB_ORDER, hb.parse_order),
    ("hb.placed", {"orderId": "5"}, hb.parse_placed_order_id),
    ("hb.trades", HB_TRADES, hb.parse_trades),
    ("hb.settlements", HB_SETTLEMENTS, hb.parse_settlements),
    ("hb.time", {"timestampMs": 1757118802487}, hb.parse_server_time_ms),
    ("hb.ws", HB_WS, lambda d: hb.parse_ws_message(json.dumps(d), NOW)),
]  # fmt: skip
IDS = [c[0] for c in CASES]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copied = copy.deepcopy(value)
    target = copied
    for key in path[:-1]:
        target = target[key]
    if new is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = new
    return copied


_DELETE = object()


def _only_typed_errors(parse: Callable[[Any], Any], payload: Any) -> None:
    with contextlib.suppress(VenueError):
        parse(payload)


@pytest.mark.parametrize(("name", "valid", "parse"), CASES, ids=IDS)
def test_valid_samples_parse(name: str, valid: Any, parse: Callable[[Any], Any]) -> None:
    assert parse(valid) is not None or name.endswith("find_order")


@pytest.mark.parametrize(("name", "valid", "parse"), CASES, ids=IDS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_one_value_replaced_gives_a_result_or_a_typed_error(
    name: str, valid: Any, parse: Callable[[Any], Any], data: st.DataObject
) -> None:
    paths = _paths(valid)
    path = data.draw(st.sampled_from(paths))
    new = data.draw(st.one_of(json_values, st.just(_DELETE))) if path else data.draw(json_values)
    _only_typed_errors(parse, _replace(valid, path, new))


@pytest.mark.parametrize(("name", "valid", "parse"), CASES, ids=IDS)
@settings(max_examples=40, deadline=None)
@given(junk=json_values)
def test_arbitrary_json_gives_a_result_or_a_typed_error(
    name: str, valid: Any, parse: Callable[[Any], Any], junk: Any
) -> None:
    _only_typed_errors(parse, junk)


@given(raw=st.one_of(st.binary(max_size=64), st.text(max_size=64)))
def test_websocket_frames_of_any_bytes(raw: bytes | str) -> None:
    _only_typed_errors(bp.parse_ws_message, raw)
    _only_typed_errors(lambda r: hb.parse_ws_message(r, NOW), raw)


@given(status=st.integers(min_value=400, max_value=599), body=st.text(max_size=200),
       retry=st.one_of(st.none(), st.text(max_size=8)))  # fmt: skip
def test_error_bodies_always_become_a_typed_error(status: int, body: str, retry: str | None) -> None:
    assert isinstance(bp.parse_error(status, body, retry), VenueError)
    assert isinstance(hb.parse_error(status, body, retry), VenueError)


@pytest.mark.parametrize(
    ("parse", "payload"),
    [
        (hb.parse_prices, HB_PRICES | {"markPrice": "-65000"}),
        (hb.parse_prices, HB_PRICES | {"markPrice": "0"}),
        (hb.parse_order, HB_ORDER | {"totalQuantity": "0"}),
        (hb.parse_order, HB_ORDER | {"availableQuantity": "0.02", "status": "PARTIALLY_FILLED"}),
        (hb.parse_trades, {"trades": [HB_TRADES["trades"][0] | {"price": "-1"}]}),
        (hb.parse_trades, {"trades": [HB_TRADES["trades"][0] | {"quantity": "1e16"}]}),
        (hb.parse_positions, HB_ACCOUNT | {"positions": [HB_ACCOUNT["positions"][0] | {"quantity": "-1"}]}),
        (bp.parse_order, BP_ORDER | {"executedQuantity": "-0.01"}),
        (bp.parse_fills, [BP_FILL | {"price": "0"}]),
        (bp.parse_positions, [BP_POSITION | {"entryPrice": "-5"}]),
        (bp.parse_markets, [BP_MARKET | {"filters": {"price": {"tickSize": "0"},
                                                     "quantity": {"stepSize": "1", "minQuantity": "1"}}}]),
    ],
)  # fmt: skip
def test_absurd_numbers_are_refused_not_used(parse: Callable[[Any], Any], payload: Any) -> None:
    with pytest.raises(MalformedResponse):
        parse(payload)


def test_a_number_sent_as_a_json_float_is_refused() -> None:
    with pytest.raises(MalformedResponse, match="expected a decimal string"):
        hb.parse_prices(HB_PRICES | {"markPrice": 65000.1})
    assert hb.parse_prices(HB_PRICES)[2] == D(65000)


@pytest.mark.parametrize("raw", ["²", "-²", "١٢", "1²", "", "-"])
def test_integers_are_ascii_digits_only(raw: str) -> None:
    # Found by the property test above: "²".isdigit() is true but int("²") raises a bare ValueError.
    with pytest.raises(MalformedResponse, match="expected an integer"):
        integer("hibachi", raw, "timestamp")
    assert integer("hibachi", "-12", "timestamp") == -12


def test_a_trade_entry_is_matched_to_its_order_before_it_is_parsed() -> None:
    (item,) = HB_TRADES["trades"]
    own = hb.parse_trade(item).venue_order_id
    assert hb.may_belong_to(item, own)
    assert not hb.may_belong_to(item, own + "0")
    assert hb.may_belong_to(item | {"bidOrderId": "x", "askOrderId": "x"}, "1")  # odd form: the full parse decides
    assert hb.may_belong_to("not an entry", "1")  # the full parse refuses it rather than skipping it
    with pytest.raises(MalformedResponse):
        hb.parse_trade(item | {"bidOrderId": "x", "askOrderId": "x"})
