"""Sizing: random draws from an injected Random, and notional -> quantity on the venues' rules.

All amounts are Decimal. Draws are on a Decimal grid (integers from the Random), never floats.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal
from math import lcm

LEVERAGE_RESOLUTION = Decimal("0.01")


class SizingError(ValueError):
    """A pair cannot be sized as asked; the message says which rule and which numbers."""


@dataclass(frozen=True, slots=True)
class QuantityRules:
    """One venue's order-size rules for a market."""

    venue: str
    step_size: Decimal
    min_quantity: Decimal
    min_notional: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if self.step_size <= 0:
            raise SizingError(f"{self.venue}: step size must be > 0, got {self.step_size}")
        if self.min_quantity < 0 or self.min_notional < 0:
            raise SizingError(f"{self.venue}: minimums must be >= 0")


def _draw_on_grid(rng: random.Random, low: Decimal, high: Decimal, resolution: Decimal) -> Decimal:
    if low > high:
        raise SizingError(f"range is empty: {low} > {high}")
    steps = int((high - low) / resolution)
    return low + resolution * rng.randint(0, steps)


def draw_leverage(rng: random.Random, low: Decimal, high: Decimal) -> Decimal:
    """A leverage uniform on [low, high] in steps of 0.01."""
    return _draw_on_grid(rng, low, high, LEVERAGE_RESOLUTION)


def draw_duration(rng: random.Random, min_hours: Decimal, max_hours: Decimal) -> timedelta:
    """A holding time uniform on [min_hours, max_hours], in whole seconds."""
    low = int(min_hours * 3600)
    high = int(max_hours * 3600)
    if low > high:
        raise SizingError(f"duration range is empty: {min_hours} h > {max_hours} h")
    return timedelta(seconds=rng.randint(low, high))


def draw_seconds(rng: random.Random, low: Decimal, high: Decimal) -> timedelta:
    """A wait uniform on [low, high] seconds, in milliseconds (for cooldowns between pairs)."""
    return timedelta(seconds=float(_draw_on_grid(rng, low, high, Decimal("0.001"))))


def round_down(value: Decimal, step: Decimal) -> Decimal:
    """The largest multiple of `step` not above `value` (for value >= 0)."""
    if step <= 0:
        raise SizingError(f"step must be > 0, got {step}")
    units = (value / step).to_integral_value(rounding=ROUND_DOWN)
    return (units * step).normalize() if units else Decimal(0)


def _places(step: Decimal) -> int:
    """Digits after the point in a finite step (negative for a step like 1E+1)."""
    exponent = step.normalize().as_tuple().exponent
    if not isinstance(exponent, int):  # "F", "n" or "N": an infinite or NaN step has no places
        raise SizingError(f"steps must be finite, got {step}")
    return -exponent


def common_step(*steps: Decimal) -> Decimal:
    """The smallest step that is a multiple of every given step (the coarser one when they nest)."""
    if not steps or any(s <= 0 for s in steps):
        raise SizingError(f"steps must be > 0, got {steps}")
    exponent = max(_places(s) for s in steps)
    exponent = max(exponent, 0)
    scale = Decimal(10) ** exponent
    integers = [int(s * scale) for s in steps]
    return (Decimal(lcm(*integers)) / scale).normalize()


def hedge_quantity(notional: Decimal, price: Decimal, rules: list[QuantityRules]) -> Decimal:
    """The one quantity both legs trade: notional / price rounded down to every venue's step.

    Raises SizingError, naming the venue and the numbers, when it falls below a venue's minimum
    quantity or minimum notional.
    """
    if notional <= 0:
        raise SizingError(f"notional must be > 0, got {notional}")
    if price <= 0:
        raise SizingError(f"price must be > 0, got {price}")
    if not rules:
        raise SizingError("no venue rules given")
    step = common_step(*(r.step_size for r in rules))
    quantity = round_down(notional / price, step)
    if quantity == 0:
        raise SizingError(f"notional {notional} at price {price} rounds to zero on step {step}")
    for r in rules:
        if quantity < r.min_quantity:
            raise SizingError(
                f"{r.venue}: quantity {quantity} (notional {notional} at price {price}, step {step}) "
                f"is below the minimum quantity {r.min_quantity}"
            )
        if quantity * price < r.min_notional:
            raise SizingError(
                f"{r.venue}: order notional {quantity * price} is below the minimum notional {r.min_notional}"
            )
    return quantity
