"""Volume split by maker flag, and points at per-side rates."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal as D

from core.domain import Venue
from core.points import SideVolume, order_sides, points_by_side


@dataclass(frozen=True)
class _Fill:
    quantity: D
    is_maker: bool | None


def test_an_order_splits_by_its_fills_quantities() -> None:
    fills = [_Fill(D("0.3"), True), _Fill(D("0.1"), False), _Fill(D("0.1"), None)]
    assert order_sides(D("0.5"), D(1000), fills) == SideVolume(D(600), D(400))


def test_an_all_maker_order_is_all_maker_and_unknown_or_missing_fills_are_taker() -> None:
    third = D(1) / 3
    assert order_sides(D("0.3"), D(1000), [_Fill(D("0.1"), True)] * 3) == SideVolume(D(1000), D(0))
    assert order_sides(D("0.3"), D(1000), [_Fill(D("0.1"), True)]).total == D(1000)  # parts sum exactly
    assert order_sides(D("0.3"), D(1000), [_Fill(D("0.1"), True)]).maker == D(1000) * third
    assert order_sides(D("0.3"), D(1000), [_Fill(D("0.3"), None)]) == SideVolume(D(0), D(1000))
    assert order_sides(D("0.3"), D(1000), []) == SideVolume(D(0), D(1000))  # fills not recorded: taker
    assert order_sides(D("0.3"), D(1000), [_Fill(D("0.5"), True)]) == SideVolume(D(1000), D(0))  # capped


def test_points_take_each_sides_rate_per_venue() -> None:
    volumes = {Venue.BACKPACK: SideVolume(D(100), D(300)), Venue.HIBACHI: SideVolume(D(0), D(50))}
    maker = {Venue.BACKPACK: D(2), Venue.HIBACHI: D(9)}
    taker = {Venue.BACKPACK: D("0.5")}
    assert points_by_side(volumes, maker, taker) == {Venue.BACKPACK: D(350), Venue.HIBACHI: D(0)}
    assert SideVolume(D(1), D(2)) + SideVolume(D(3), D(4)) == SideVolume(D(4), D(6))
