"""The simulated tape on its own: which prints a move of the touch makes, their seeded volumes, and what they
fill of a resting order behind its queue."""

from __future__ import annotations

from decimal import Decimal as D

from core.domain import Side
from exchanges.sim.tape import RestingFill, Sweep, Tape, queue_ahead, resting_fill

TICK = D("0.1")
LOT = D("0.001")


def _moved(tape: Tape, old: tuple[str, str], new: tuple[str, str]) -> list[Sweep]:
    tape.step("BTC", (D(old[0]), D(old[1])), TICK)
    return tape.step("BTC", (D(new[0]), D(new[1])), TICK)


def test_a_first_look_and_a_still_touch_print_nothing() -> None:
    tape = Tape("1")
    assert tape.step("BTC", (D(100), D("100.2")), TICK) == []
    assert tape.step("BTC", (D(100), D("100.2")), TICK) == []


def test_a_rise_lifts_the_asks_left_behind_and_a_fall_hits_the_bids_left_behind() -> None:
    (up,) = _moved(Tape("1"), ("100.0", "100.2"), ("100.3", "100.5"))
    assert (up.aggressor, up.low, up.high) == (Side.LONG, D("100.2"), D("100.4"))
    (down,) = _moved(Tape("1"), ("100.0", "100.2"), ("99.7", "99.9"))
    assert (down.aggressor, down.low, down.high) == (Side.SHORT, D("99.8"), D("100.0"))
    assert down.prints_at(D("99.9")) and not down.prints_at(D("99.7")) and not down.prints_at(D("99.95"))


def test_a_jump_of_many_ticks_is_one_sweep() -> None:
    (down,) = _moved(Tape("1"), ("65000.0", "65000.2"), ("58500.0", "58500.2"))
    assert (down.low, down.high) == (D("58500.1"), D("65000.0"))


def test_volumes_are_seeded_whole_lots_within_the_bounds() -> None:
    def volumes(seed: str) -> list[D]:
        tape = Tape(seed)
        (sweep,) = _moved(tape, ("100.0", "100.2"), ("98.0", "98.2"))
        return [tape.volume(sweep, D(100) - i * TICK, D(5), LOT) for i in range(20)]

    first = volumes("7")
    assert first == volumes("7")
    assert first != volumes("8")
    assert all(D(1) <= v <= D(8) and v % LOT == 0 for v in first)
    assert len(set(first)) > 1


def test_the_queue_ahead_is_the_displayed_size_at_the_price_on_the_orders_side() -> None:
    bids = [(D("99.9"), D(5)), (D("99.8"), D(7))]
    asks = [(D("100.1"), D(5))]
    assert queue_ahead(Side.LONG, D("99.8"), bids, asks) == D(7)
    assert queue_ahead(Side.LONG, D(100), bids, asks) == 0  # improves the touch
    assert queue_ahead(Side.SHORT, D("100.1"), bids, asks) == D(5)
    assert queue_ahead(Side.SHORT, D("99.9"), bids, asks) == 0


def _fill(
    tape: Tape, sweeps: list[Sweep], *, side: Side, price: str, ahead: str, opposite: str | None = None
) -> RestingFill:
    return resting_fill(
        tape, side=side, price=D(price), remaining=D(2), ahead=D(ahead), sweeps=sweeps,
        opposite_touch=None if opposite is None else D(opposite), level_size=D(5), lot=LOT,
    )  # fmt: skip


def test_prints_through_the_price_fill_the_rest_and_prints_at_it_eat_the_queue_first() -> None:
    tape = Tape("1", volume_low=D("0.6"), volume_high=D("0.6"))  # every print 3 lots of size
    sweeps = _moved(tape, ("100.0", "100.2"), ("99.9", "100.1"))  # one print, at 100.0
    assert _fill(tape, sweeps, side=Side.LONG, price="100.0", ahead="5") == _result("0", "2")
    assert _fill(tape, sweeps, side=Side.LONG, price="100.0", ahead="2") == _result("1", "0")
    assert _fill(tape, sweeps, side=Side.LONG, price="100.0", ahead="0") == _result("2", "0")
    assert _fill(tape, sweeps, side=Side.LONG, price="100.1", ahead="5") == _result("2", "0")  # through
    assert _fill(tape, sweeps, side=Side.LONG, price="99.9", ahead="0") == _result("0", "0")  # above it
    assert _fill(tape, sweeps, side=Side.SHORT, price="100.0", ahead="0") == _result("0", "0")  # wrong side


def test_a_sell_is_the_mirror_image() -> None:
    tape = Tape("1", volume_low=D("0.6"), volume_high=D("0.6"))
    sweeps = _moved(tape, ("100.0", "100.2"), ("100.2", "100.4"))  # prints at 100.2 and 100.3
    assert _fill(tape, sweeps, side=Side.SHORT, price="100.3", ahead="2") == _result("1", "0")
    assert _fill(tape, sweeps, side=Side.SHORT, price="100.2", ahead="5") == _result("2", "0")
    assert _fill(tape, sweeps, side=Side.SHORT, price="100.4", ahead="0") == _result("0", "0")


def test_an_opposite_touch_beyond_the_price_fills_without_prints_but_one_at_it_does_not() -> None:
    tape = Tape("1")
    assert _fill(tape, [], side=Side.LONG, price="100.0", ahead="5", opposite="99.9") == _result("2", "0")
    assert _fill(tape, [], side=Side.LONG, price="100.0", ahead="5", opposite="100.0") == _result("0", "5")
    assert _fill(tape, [], side=Side.SHORT, price="100.0", ahead="5", opposite="100.1") == _result("2", "0")
    assert _fill(tape, [], side=Side.SHORT, price="100.0", ahead="5", opposite="100.0") == _result("0", "5")


def _result(quantity: str, ahead: str) -> RestingFill:
    return RestingFill(D(quantity), D(ahead))
