"""A leg's smallest order for a maker phase: its minimum size, or its minimum notional at the phase's price,
in whole steps of the coarser venue (a maker fill must be hedgeable in full on the other venue)."""

from __future__ import annotations

from decimal import Decimal as D

from actors.maker import LegRules


def test_the_floor_is_the_larger_of_minimum_size_and_minimum_notional() -> None:
    hibachi = LegRules(step=D("0.0000000001"), minimum=D("0.0000000001"), tick=D("0.1"), min_notional=D(1))
    # 1 USD at 65000 is 0.0000153846... BTC: up to the next whole step of 0.00001, never below the notional.
    floor = hibachi.floor(D(65000), D("0.00001"))
    assert floor == D("0.00002") and floor * 65000 >= 1 and (floor - D("0.00001")) * 65000 < 1
    backpack = LegRules(step=D("0.00001"), minimum=D("0.00001"), tick=D("0.1"))
    assert backpack.floor(D(65000), D("0.00001")) == D("0.00001")
    exact = LegRules(step=D("0.01"), minimum=D("0.01"), tick=D("0.01"), min_notional=D(10))
    assert exact.floor(D(100), D("0.01")) == D("0.1")  # exactly the notional: no extra step
