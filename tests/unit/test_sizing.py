from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal as D

import pytest

from core.sizing import (
    QuantityRules,
    SizingError,
    common_step,
    draw_duration,
    draw_leverage,
    draw_seconds,
    hedge_quantity,
    round_down,
)

BP = QuantityRules("backpack", step_size=D("0.00001"), min_quantity=D("0.00001"), min_notional=D("0"))
HB = QuantityRules("hibachi", step_size=D("0.0001"), min_quantity=D("0.0001"), min_notional=D("10"))


def test_leverage_draws_stay_in_range_on_a_cent_grid_and_cover_it() -> None:
    rng = random.Random(1)
    draws = [draw_leverage(rng, D("2.0"), D("3.0")) for _ in range(3000)]
    assert min(draws) >= D("2.0")
    assert max(draws) <= D("3.0")
    assert all(d == d.quantize(D("0.01")) for d in draws)
    assert len(set(draws)) > 90  # all 101 grid points are reachable
    assert min(draws) == D("2.00")
    assert max(draws) == D("3.00")


def test_draws_are_reproducible_from_the_injected_random() -> None:
    a = [draw_leverage(random.Random(42), D(2), D(3)) for _ in range(1)]
    b = [draw_leverage(random.Random(42), D(2), D(3)) for _ in range(1)]
    assert a == b


def test_equal_bounds_give_that_value() -> None:
    assert draw_leverage(random.Random(0), D("2.5"), D("2.5")) == D("2.5")
    assert draw_duration(random.Random(0), D(4), D(4)) == timedelta(hours=4)


def test_duration_draws_in_whole_seconds_within_bounds() -> None:
    rng = random.Random(3)
    draws = [draw_duration(rng, D(4), D(8)) for _ in range(1000)]
    assert min(draws) >= timedelta(hours=4)
    assert max(draws) <= timedelta(hours=8)
    assert all(d.microseconds == 0 for d in draws)
    assert max(draws) - min(draws) > timedelta(hours=3)  # spread over the range, not a constant


def test_minute_long_durations_are_possible_for_tests() -> None:
    d = draw_duration(random.Random(0), D("0.01"), D("0.02"))
    assert timedelta(seconds=36) <= d <= timedelta(seconds=72)


def test_empty_ranges_are_refused() -> None:
    with pytest.raises(SizingError):
        draw_leverage(random.Random(0), D(3), D(2))
    with pytest.raises(SizingError):
        draw_duration(random.Random(0), D(8), D(4))
    with pytest.raises(SizingError):
        draw_seconds(random.Random(0), D(8), D(4))


def test_cooldown_draw() -> None:
    d = draw_seconds(random.Random(5), D(60), D(300))
    assert timedelta(seconds=60) <= d <= timedelta(seconds=300)


@pytest.mark.parametrize(
    ("value", "step", "expected"),
    [
        (D("1.23456"), D("0.01"), D("1.23")),
        (D("1.239999"), D("0.01"), D("1.23")),  # down, never up
        (D("5"), D("2"), D("4")),
        (D("0.0099"), D("0.01"), D("0")),
        (D("0.3"), D("0.1"), D("0.3")),  # exact multiples stay
        (D("1.5"), D("0.25"), D("1.5")),
    ],
)
def test_round_down(value: D, step: D, expected: D) -> None:
    assert round_down(value, step) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (D("0.00001"), D("0.0001"), D("0.0001")),
        (D("0.01"), D("0.001"), D("0.01")),
        (D("0.01"), D("0.01"), D("0.01")),
        (D("0.02"), D("0.03"), D("0.06")),  # neither divides the other
        (D("1"), D("0.5"), D("1")),
    ],
)
def test_common_step_is_a_multiple_of_both(a: D, b: D, expected: D) -> None:
    assert common_step(a, b) == expected
    assert common_step(b, a) == expected


def test_common_step_refuses_an_infinite_step() -> None:
    with pytest.raises(SizingError, match="finite"):
        common_step(D("0.01"), D("Infinity"))


def test_hedge_quantity_rounds_down_to_the_coarser_step() -> None:
    # 1000 USD at 65000.5: 0.0153844... -> Hibachi's 0.0001 step -> 0.0153
    assert hedge_quantity(D("1000"), D("65000.5"), [BP, HB]) == D("0.0153")


def test_hedge_quantity_below_minimum_quantity_is_refused_with_reason() -> None:
    rules = [QuantityRules("backpack", D("0.01"), min_quantity=D("0.05"))]
    with pytest.raises(SizingError, match=r"backpack: quantity 0\.03 .* below the minimum quantity 0\.05"):
        hedge_quantity(D("3"), D("100"), rules)


def test_hedge_quantity_below_minimum_notional_is_refused_with_reason() -> None:
    # 12 USD at 100 -> 0.12, but rounding to 0.1 gives 10 USD... then 9.9 at a 0.1 step:
    with pytest.raises(SizingError, match=r"hibachi: order notional 9\.9 is below the minimum notional 10"):
        hedge_quantity(D("9.95"), D("1"), [QuantityRules("hibachi", D("0.1"), D("0.1"), D("10"))])


def test_hedge_quantity_that_rounds_to_zero_is_refused() -> None:
    with pytest.raises(SizingError, match="rounds to zero"):
        hedge_quantity(D("1"), D("65000"), [QuantityRules("x", D("0.001"), D("0"))])


def test_hedge_quantity_bad_inputs() -> None:
    with pytest.raises(SizingError):
        hedge_quantity(D("0"), D("1"), [BP])
    with pytest.raises(SizingError):
        hedge_quantity(D("1"), D("0"), [BP])
    with pytest.raises(SizingError):
        hedge_quantity(D("1"), D("1"), [])
    with pytest.raises(SizingError):
        QuantityRules("x", D("0"), D("0"))
