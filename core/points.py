"""Traded volume split by liquidity side, and the points it earns at per-side rates. Pure.

A venue may award maker and taker volume differently, so volume is split by each fill's maker flag. What no
fill says was maker (a taker fill, a fill whose side the venue did not tell, volume with no fill recorded yet)
counts as taker: the side every market order is on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from core.domain import Venue

ZERO = Decimal(0)


class FillLike(Protocol):
    """The fields of a fill row the split reads."""

    @property
    def quantity(self) -> Decimal: ...  # noqa: D102
    @property
    def is_maker(self) -> bool | None: ...  # noqa: D102


@dataclass(frozen=True, slots=True)
class SideVolume:
    """Traded notional (USD) by liquidity side."""

    maker: Decimal = ZERO
    taker: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        """Both sides."""
        return self.maker + self.taker

    def __add__(self, other: SideVolume) -> SideVolume:
        return SideVolume(self.maker + other.maker, self.taker + other.taker)


def order_sides(filled_quantity: Decimal, volume: Decimal, fills: Iterable[FillLike]) -> SideVolume:
    """An order's `volume` (filled quantity x average price) split in the proportion of its fills' quantities
    by maker flag; shares of quantity keep the two parts summing to the order's own volume exactly."""
    if filled_quantity <= 0:
        return SideVolume(ZERO, volume)
    maker_qty = min(filled_quantity, sum((f.quantity for f in fills if f.is_maker is True), ZERO))
    maker = volume if maker_qty == filled_quantity else volume * maker_qty / filled_quantity
    return SideVolume(maker, volume - maker)


def points_by_side(
    volumes: Mapping[Venue, SideVolume],
    maker_per_usd: Mapping[Venue, Decimal],
    taker_per_usd: Mapping[Venue, Decimal],
) -> dict[Venue, Decimal]:
    """Points per venue: maker volume at its maker rate plus taker volume at its taker rate (unnamed: 0)."""
    return {
        venue: v.maker * maker_per_usd.get(venue, ZERO) + v.taker * taker_per_usd.get(venue, ZERO)
        for venue, v in volumes.items()
    }
