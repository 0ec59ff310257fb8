from __future__ import annotations

from decimal import Decimal as D

import pytest

from core.domain import Side
from core.risk import collateral_ratio, liquidation_distance, pnl_divergence, unrealized_pnl


@pytest.mark.parametrize(
    ("side", "qty", "entry", "mark", "expected"),
    [
        (Side.LONG, D("0.5"), D("60000"), D("61000"), D("500")),  # long, price up: gain
        (Side.LONG, D("0.5"), D("60000"), D("59000"), D("-500")),  # long, price down: loss
        (Side.SHORT, D("0.5"), D("60000"), D("59000"), D("500")),  # short, price down: gain
        (Side.SHORT, D("0.5"), D("60000"), D("61000"), D("-500")),  # short, price up: loss
        (Side.LONG, D("0.001"), D("65000.5"), D("65000.6"), D("0.0001")),
        (Side.SHORT, D("3"), D("3500.12"), D("3500.12"), D("0")),
    ],
)
def test_unrealized_pnl(side: Side, qty: D, entry: D, mark: D, expected: D) -> None:
    assert unrealized_pnl(side, qty, entry, mark) == expected


def test_unrealized_pnl_refuses_signed_quantity() -> None:
    with pytest.raises(ValueError, match="unsigned"):
        unrealized_pnl(Side.LONG, D("-1"), D("1"), D("2"))


def test_collateral_ratio() -> None:
    assert collateral_ratio(D("1500"), D("1000")) == D("1.5")
    assert collateral_ratio(D("900"), D("1000")) == D("0.9")
    assert collateral_ratio(D("1000"), D("0")) is None
    with pytest.raises(ValueError):
        collateral_ratio(D("1"), D("-1"))


def test_pnl_divergence_of_a_perfect_and_an_imperfect_hedge() -> None:
    assert pnl_divergence(D("500"), D("-500"), D("30000")) == 0
    # legs of 500 and -440 on 1000 notional: 60 apart = 6 %
    assert pnl_divergence(D("500"), D("-440"), D("1000")) == D("0.06")
    assert pnl_divergence(D("-500"), D("440"), D("1000")) == D("0.06")
    with pytest.raises(ValueError):
        pnl_divergence(D("1"), D("1"), D("0"))


def test_liquidation_distance() -> None:
    # long at 100 with liquidation at 60: a 40 % fall liquidates
    assert liquidation_distance(Side.LONG, D("100"), D("60")) == D("0.4")
    # short at 100 with liquidation at 125: a 25 % rise liquidates
    assert liquidation_distance(Side.SHORT, D("100"), D("125")) == D("0.25")
    # past liquidation: negative
    assert liquidation_distance(Side.LONG, D("50"), D("60")) == D("-0.2")
    with pytest.raises(ValueError):
        liquidation_distance(Side.LONG, D("0"), D("1"))
