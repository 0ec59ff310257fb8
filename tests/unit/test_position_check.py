"""core.position_check: comparing what the venues hold with what the pairs hold, over readings."""

from __future__ import annotations

from decimal import Decimal as D

from core.domain import Side, Venue
from core.position_check import Comparison, Difference, Expected, Key, compare_positions
from exchanges.base import Position

BP, HB = Venue.BACKPACK, Venue.HIBACHI
BTC = "BTC_USDC_PERP"
LONG_BTC = Expected({(BP, BTC): D("0.01")}, frozenset(), {(BP, BTC): (7,)})


def _pos(symbol: str, side: Side, quantity: str) -> Position:
    return Position(symbol, side, D(quantity), D(100), None, None, None)


def _compare(
    items: list[Position] | None, before: Expected, after: Expected, counts: dict[Key, int] | None = None
) -> Comparison:
    return compare_positions({BP: items}, before, after, counts or {}, 2)


def test_agreement_clears_the_counter() -> None:
    result = _compare([_pos(BTC, Side.LONG, "0.01")], LONG_BTC, LONG_BTC, {(BP, BTC): 1})
    assert result == Comparison(((BP, BTC),), (), {})


def test_a_difference_counts_until_the_threshold() -> None:
    first = _compare([], LONG_BTC, LONG_BTC)
    assert first.lasting == () and first.counts == {(BP, BTC): 1}
    second = _compare([], LONG_BTC, LONG_BTC, first.counts)
    assert second.lasting == (Difference(BP, BTC, D("0.01"), D(0), None, (7,)),)
    assert second.lasting[0].leg_shrank


def test_a_symbol_mid_trade_or_changed_between_readings_is_not_judged() -> None:
    moving = Expected(LONG_BTC.held, frozenset({(BP, BTC)}), LONG_BTC.holders)
    assert _compare([], LONG_BTC, moving, {(BP, BTC): 1}).counts == {(BP, BTC): 1}
    assert _compare([], moving, LONG_BTC, {(BP, BTC): 5}).counts == {(BP, BTC): 1}  # needs a fresh reading
    changed = Expected({(BP, BTC): D("0.02")})
    assert _compare([], changed, LONG_BTC).lasting == () and _compare([], changed, LONG_BTC).counts == {(BP, BTC): 0}


def test_an_unreadable_venue_keeps_its_counters() -> None:
    assert _compare(None, LONG_BTC, LONG_BTC, {(BP, BTC): 1}).counts == {(BP, BTC): 1}


def test_what_a_difference_is() -> None:
    unknown = Difference(BP, "SOL", D(0), D(-3), D(100))
    assert not unknown.leg_shrank and unknown.unaccounted == D(-3)
    more = Difference(BP, BTC, D("0.01"), D("0.03"), D(100))
    assert not more.leg_shrank and more.unaccounted == D("0.02")
    flipped = Difference(BP, BTC, D("0.01"), D("-0.01"), D(100))
    assert not flipped.leg_shrank
    shrank = Difference(BP, BTC, D("-0.02"), D("-0.01"), D(100))
    assert shrank.leg_shrank


def test_an_unknown_position_lasting_is_reported_with_its_entry() -> None:
    nothing = Expected()
    items = [_pos("SOL", Side.SHORT, "3"), _pos("SOL", Side.LONG, "1")]
    once = compare_positions({BP: items, HB: []}, nothing, nothing, {}, 1)
    assert once.lasting == (Difference(BP, "SOL", D(0), D(-2), D(100)),)
