"""The canary's arithmetic: the smallest pair both venues accept, and what it cost against the fee schedule. Pure.

Cost per 1M USD of volume is reports/summary.py's figure: what the pair lost (a gain is negative) per million
traded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from core.domain import Side, Venue
from core.planning import VenueView
from core.sizing import common_step
from live.rules import all_taker_cost_per_1m

MILLION = Decimal(1_000_000)
CENTS = Decimal("0.01")
# Prices move between the reading that sizes the canary and the coordinator's own: the notional handed to the
# planner sits half a step above the minimum, and the minimum notional is met with this much room.
NOTIONAL_ROOM = Decimal("1.02")


def _round_up(value: Decimal, step: Decimal) -> Decimal:
    return ((value / step).to_integral_value(rounding=ROUND_CEILING) * step).normalize()


def minimum_quantity(views: Sequence[VenueView]) -> Decimal:
    """The smallest quantity every venue accepts: on the coarser (common) step, at least each minimum
    quantity, and at least each minimum notional (with NOTIONAL_ROOM) at the dearer mark."""
    step = common_step(*(v.step_size for v in views))
    price = max(v.mark for v in views)
    by_notional = max(v.min_notional for v in views) * NOTIONAL_ROOM / price
    floor = max(by_notional, *(v.min_quantity for v in views))
    return max(_round_up(floor, step), step)


def planner_notional(quantity: Decimal, views: Sequence[VenueView]) -> Decimal:
    """The notional that makes the coordinator's sizing (notional / dearer mark, rounded down to the common
    step) land on `quantity`: half a step above it, so a small price move either way keeps the same quantity."""
    step = common_step(*(v.step_size for v in views))
    return (quantity + step / 2) * max(v.mark for v in views)


@dataclass(frozen=True, slots=True)
class LegFills:
    """One leg's open and close as booked: venue, side, quantity, average prices, fees, and the mids at the
    two decisions."""

    venue: Venue
    side: Side
    quantity: Decimal
    open_price: Decimal
    close_price: Decimal
    fees: Decimal
    open_mid: Decimal
    close_mid: Decimal

    @property
    def volume(self) -> Decimal:
        """Traded notional, both fills."""
        return self.quantity * (self.open_price + self.close_price)

    @property
    def spread_cost(self) -> Decimal:
        """What crossing the spread (and any slippage) cost against the mid at each decision: a long pays above
        the mid and sells below it; a short the other way round."""
        return self.side.sign * (self.open_price - self.open_mid - (self.close_price - self.close_mid)) * self.quantity


@dataclass(frozen=True, slots=True)
class Costs:
    """The canary's costs, and what the fee schedule predicted for the same volume."""

    volume: Decimal
    fees: Decimal
    predicted_fees: Decimal
    spread: Decimal
    funding: Decimal
    realized_pnl: Decimal
    cost_per_1m: Decimal | None
    predicted_cost_per_1m: Decimal


def costs(
    legs: Sequence[LegFills], funding: Decimal, realized_pnl: Decimal, rates: Mapping[Venue, tuple[Decimal, Decimal]]
) -> Costs:
    """Sum the legs; the prediction is every fill at its venue's taker rate (the check's all-taker estimate);
    `rates` holds each venue's (maker, taker)."""
    takers = {venue: taker for venue, (_maker, taker) in rates.items()}
    volume = sum((leg.volume for leg in legs), Decimal(0))
    predicted = sum((leg.volume * takers[leg.venue] for leg in legs), Decimal(0))
    return Costs(
        volume=volume,
        fees=sum((leg.fees for leg in legs), Decimal(0)),
        predicted_fees=predicted,
        spread=sum((leg.spread_cost for leg in legs), Decimal(0)),
        funding=funding,
        realized_pnl=realized_pnl,
        cost_per_1m=None if volume == 0 else (-realized_pnl / volume * MILLION).quantize(CENTS),
        predicted_cost_per_1m=all_taker_cost_per_1m(rates),
    )
