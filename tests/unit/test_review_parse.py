"""Parsing rules from the review of the clients against the spec (issue 15 item 5): what the wire leaves unknown
stays unknown, and only what the venue marks tradable is tradable."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from exchanges.backpack import parse as bp

BP_POSITION = {"symbol": "BTC_USDC_PERP", "netQuantity": "-0.01", "entryPrice": "65000", "markPrice": "65010",
               "pnlUnrealized": "-0.1"}  # fmt: skip


@pytest.mark.parametrize(("wire", "expected"), [("0", None), ("-12.5", None), ("71000.5", D("71000.5"))])
def test_backpack_liquidation_estimate_that_no_price_can_be_is_unknown(wire: str, expected: D | None) -> None:
    (pos,) = bp.parse_positions([BP_POSITION | {"estLiquidationPrice": wire}])
    assert pos.liquidation_price == expected


def test_backpack_position_without_a_liquidation_estimate_parses() -> None:
    (pos,) = bp.parse_positions([BP_POSITION])
    assert pos.quantity == D("0.01") and pos.liquidation_price is None
