"""Parsing rules from the review of the clients against the spec (issue 15 item 5): what the wire leaves unknown
stays unknown, and only what the venue marks tradable is tradable."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from exchanges.backpack import parse as bp
from exchanges.errors import MalformedResponse
from exchanges.hibachi import parse as hb

BP_POSITION = {"symbol": "BTC_USDC_PERP", "netQuantity": "-0.01", "entryPrice": "65000", "markPrice": "65010",
               "pnlUnrealized": "-0.1"}  # fmt: skip


@pytest.mark.parametrize(("wire", "expected"), [("0", None), ("-12.5", None), ("71000.5", D("71000.5"))])
def test_backpack_liquidation_estimate_that_no_price_can_be_is_unknown(wire: str, expected: D | None) -> None:
    (pos,) = bp.parse_positions([BP_POSITION | {"estLiquidationPrice": wire}])
    assert pos.liquidation_price == expected


def test_backpack_position_without_a_liquidation_estimate_parses() -> None:
    (pos,) = bp.parse_positions([BP_POSITION])
    assert pos.quantity == D("0.01") and pos.liquidation_price is None


def _history(*rows: dict[str, object]) -> dict[str, object]:
    return {"hasMore": False, "orders": list(rows)}


HB_ROW = {"orderId": "582870002718998528", "totalQuantity": "0.05", "filledQuantity": "0.02", "avgFillPrice": "65010.5",
          "createdAt": 1700000000000, "closedAt": 1700000000100, "status": "Cancelled"}  # fmt: skip


def test_hibachi_history_gives_a_finished_orders_fill() -> None:
    other = HB_ROW | {"orderId": "582870002718998527", "filledQuantity": "0.05"}
    ended = hb.history_fill(_history(other, HB_ROW), "582870002718998528")
    assert ended == hb.HistoryFill(D("0.02"), D("65010.5"))
    assert hb.history_fill(_history(other), "582870002718998528") is None
    nothing = hb.history_fill(_history(HB_ROW | {"filledQuantity": "0", "avgFillPrice": None}), HB_ROW["orderId"])
    assert nothing == hb.HistoryFill(D(0), None)


@pytest.mark.parametrize(
    "row",
    [
        {k: v for k, v in HB_ROW.items() if k != "filledQuantity"},
        HB_ROW | {"filledQuantity": "0.06"},
        HB_ROW | {"avgFillPrice": "0"},
    ],
)
def test_hibachi_history_that_contradicts_itself_is_malformed(row: dict[str, object]) -> None:
    with pytest.raises(MalformedResponse):
        hb.history_fill(_history(row), "582870002718998528")


HB_CONTRACT = {
    "id": 2, "symbol": "BTC/USDT-P", "underlyingDecimals": 10, "settlementDecimals": 6, "tickSize": "0.1",
    "stepSize": "0.0000000001", "minOrderSize": "0.0000000001", "minNotional": "1",
    "initialMarginRate": "0.066667", "maintenanceMarginRate": "0.046667",
}  # fmt: skip


def _exchange_info(*contracts: dict[str, object]) -> dict[str, object]:
    return {
        "status": "NORMAL",
        "feeConfig": {"tradeMakerFeeRate": "0.00015000", "tradeTakerFeeRate": "0.00045000"},
        "futureContracts": list(contracts),
    }


@pytest.mark.parametrize(
    ("flags", "tradable"),
    [
        ({"status": "LIVE"}, True),
        ({"status": "LIVE", "live": True}, True),
        ({"status": "CLOSED", "live": True}, False),  # the status decides where it is given
        ({"status": "live"}, False),
        ({"status": None, "live": True}, False),
        ({"live": True}, True),  # UNCERTAIN: the OpenAPI example's shape, with no status
        ({"live": False}, False),
        ({}, False),
    ],
)
def test_hibachi_contract_is_tradable_only_when_live(flags: dict[str, object], tradable: bool) -> None:
    info = hb.parse_exchange_info(_exchange_info(HB_CONTRACT | flags))
    assert ("BTC/USDT-P" in info.tradable) is tradable
    assert "BTC/USDT-P" in info.contracts  # still known: its id and decimals serve lookups of what we hold
