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


def test_a_phase_keeps_one_floor_back_for_the_taker_finish() -> None:
    """Found by the maker chaos run (seed 20261125, maker_maker): Hibachi's partial fills in 0.00001s left its
    leg 0.00006 ETH apart after a close phase; that hair (0.20 USD) was below Hibachi's 1 USD minimum, so every
    close of it was refused and the leg stayed open alone. A phase now trades all but one floor, so each leg's
    finishing taker order is at least a floor (plus any hair) and is taken."""
    from types import SimpleNamespace

    from actors.maker import MakerPhase
    from core.activity import Activity
    from core.clock import FakeClock
    from core.config import ExecutionConfig, ExecutionStyle
    from core.domain import OrderPurpose, Side

    execution = ExecutionConfig(open=ExecutionStyle.MAKER_MAKER, close=ExecutionStyle.MAKER_MAKER)
    desk = SimpleNamespace(
        clock=FakeClock(), activity=Activity(), settings=SimpleNamespace(trading=SimpleNamespace(execution=execution))
    )
    rules = {
        Side.LONG: LegRules(D("0.0001"), D("0.0001"), D("0.01")),
        Side.SHORT: LegRules(D("0.000001"), D("0.000001"), D("0.01"), min_notional=D(1)),
    }
    phase = MakerPhase(
        desk, None, pair_id=1, legs={}, purpose=OrderPurpose.CLOSE, target=D("0.0293"),  # type: ignore[arg-type]
        style=ExecutionStyle.MAKER_MAKER, maker_side=None, rules=rules, price=D(3400),
    )  # fmt: skip
    assert phase.floor == D("0.0003")  # 1 USD at 3400 is 0.000294...: up to whole 0.0001s
    assert phase.target == D("0.0290")
