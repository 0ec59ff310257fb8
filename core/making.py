"""The arithmetic of maker execution, without I/O: what to rest, where, how much, when to move it, what to
hedge, and which venue makes. actors/maker.py carries these decisions out.

Terms. A phase (an open or a close) trades `target` on each leg. `done[side]` is what a leg has traded in it.
The leg that leads holds `done[lead] - done[lag]` unhedged; sizing keeps that, with every resting order filled
in full, within `chunk` (max_unhedged_usd at the price), so a fill can never take exposure past the bound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from core.domain import Side, Venue
from exchanges.base import FeeRates


def round_down(quantity: Decimal, step: Decimal) -> Decimal:
    """`quantity` down to a whole number of `step` (never negative)."""
    if quantity <= 0:
        return Decimal(0)
    return (quantity / step).to_integral_value(rounding=ROUND_DOWN) * step


def chunk(max_unhedged_usd: Decimal, price: Decimal, step: Decimal) -> Decimal:
    """The most one resting order may hold: max_unhedged_usd at `price`, down to the (coarser) step."""
    return round_down(max_unhedged_usd / price, step)


def lead(done: Mapping[Side, Decimal], side: Side) -> Decimal:
    """How far `side` is ahead of the other leg (0 when it is not ahead)."""
    return max(Decimal(0), done[side] - done[side.opposite])


def maker_size(done: Mapping[Side, Decimal], side: Side, target: Decimal, size: Decimal, step: Decimal) -> Decimal:
    """The quantity to rest on `side`: what it still needs, no more than `size` less its lead over the other
    leg (so its full fill leaves at most `size` unhedged), down to `step`."""
    room = size - lead(done, side)
    return round_down(min(target - done[side], room), step)


def hedge_size(done: Mapping[Side, Decimal], lagging: Side, step: Decimal, minimum: Decimal) -> Decimal:
    """The taker quantity that brings the lagging leg level with the other, down to the step; 0 below the
    venue's minimum (the rest is carried to the next fill, or settled at the end of the phase)."""
    quantity = round_down(lead(done, lagging.opposite), step)
    return quantity if quantity >= minimum and quantity > 0 else Decimal(0)


def rest_price(buy: bool, bid: Decimal | None, ask: Decimal | None) -> Decimal | None:
    """Where a post-only order joins the book: the best bid for a buy, the best ask for a sell."""
    return bid if buy else ask


def should_reprice(
    buy: bool, price: Decimal, bid: Decimal | None, ask: Decimal | None, tick: Decimal, ticks: int
) -> bool:
    """The touch has left a resting order behind by more than `ticks` ticks (a buy below a risen bid, a sell
    above a fallen ask): it no longer trades, so it moves to the touch. A touch that moved onto or through it
    is left alone: that is where it fills."""
    touch = bid if buy else ask
    if touch is None:
        return False
    away = touch - price if buy else price - touch
    return away > tick * ticks


@dataclass(frozen=True, slots=True)
class MakerChoice:
    """The venue that rests (makes) and why."""

    venue: Venue
    reason: str


def choose_maker(
    configured: str,
    venues: Sequence[Venue],
    fees: Mapping[Venue, FeeRates],
    maker_points: Mapping[Venue, Decimal],
) -> MakerChoice:
    """The maker venue: the configured one, or with "auto" the venue where resting saves most per USD: its
    taker fee minus its maker fee, weighted by (1 + points per maker USD there). Ties go to the first venue."""
    if configured != "auto":
        return MakerChoice(Venue(configured), "configured")

    def saving(v: Venue) -> Decimal:
        rates = fees[v]
        return (rates.taker - rates.maker) * (1 + maker_points.get(v, Decimal(0)))

    best = max(venues, key=lambda v: (saving(v), -venues.index(v)))
    shown = ", ".join(f"{v} {saving(v) * 10_000:.2f} bps" for v in venues)
    return MakerChoice(best, f"auto: saving per USD {shown}")
