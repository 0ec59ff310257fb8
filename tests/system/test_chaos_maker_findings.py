"""What the maker chaos runs found in actors/maker.py, pinned down without the chaos around it.

Found: in maker_maker, a lead below one step (a partial fill off the coarser step: Hibachi fills ETH in
0.000001s, the pair trades 0.0001s) older than imbalance_age_s cancelled the lagging leg's resting order at every
loop turn, though hedge_size rounds that lead to 0 and nothing was hedged; the phase churned cancel/re-rest at one
price until its timeout (chaos seed 20261125, maker_maker). Fixed in MakerPhase._hedge_due."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from actors.maker import LegRules, MakerPhase, _Resting
from core.activity import Activity
from core.clock import FakeClock
from core.config import ExecutionConfig, ExecutionStyle
from core.domain import Side

STEP = D("0.0001")  # Backpack's ETH step: the coarser one, which both legs trade in


def _phase(done: dict[Side, D]) -> tuple[MakerPhase, list[Any], FakeClock]:
    """A maker_maker phase of an ETH pair at 3500, `done` traded, the SHORT leg's order resting (lagging), with
    its cancels recorded instead of sent."""
    clock = FakeClock()
    phase = MakerPhase.__new__(MakerPhase)
    phase.style = ExecutionStyle.MAKER_MAKER
    style = ExecutionStyle.MAKER_MAKER
    phase.config = ExecutionConfig(open=style, close=style, imbalance_age_s=D(3), imbalance_usd=D(30))
    phase.clock = clock
    phase.price = D(3500)
    phase.step = STEP
    phase.pair_id = 7
    phase.done = dict(done)
    phase.rules = {side: LegRules(STEP, STEP, D("0.01")) for side in Side}
    phase.legs = dict.fromkeys(Side)  # type: ignore[assignment]  # never read: no taker order is sent here
    phase.activity = Activity()
    phase.lead_since = clock.monotonic()
    resting = _Resting(Side.SHORT, None, D("3502.27"), "1", clock.monotonic())  # type: ignore[arg-type]
    phase.resting = {Side.LONG: None, Side.SHORT: resting}
    cancels: list[Any] = []
    phase._cancel = cancels.append  # type: ignore[method-assign,assignment]
    return phase, cancels, clock


def test_a_hedgeable_lead_past_its_age_cancels_the_lagging_order_once_hedged() -> None:
    """The control: a lead of whole steps past imbalance_age_s cancels the lagging order and hedges it (the taker
    order itself is left out here: hedge_size is what decides)."""
    phase, cancels, clock = _phase({Side.LONG: D("0.0171"), Side.SHORT: D("0.0170")})
    hedged: list[Side] = []

    def hedge(lagging: Side, heard_ns: int, *, forced: bool) -> None:
        hedged.append(lagging)

    phase._hedge = hedge  # type: ignore[method-assign]
    clock.advance(4)
    phase._hedge_due()
    assert len(cancels) == 1 and hedged == [Side.SHORT]


def test_a_lead_below_one_step_does_not_cancel_the_lagging_order() -> None:
    phase, cancels, clock = _phase({Side.LONG: D("0.0171"), Side.SHORT: D("0.017025")})
    clock.advance(4)
    for _ in range(3):  # three turns of the phase's loop
        phase._hedge_due()
    assert cancels == []
