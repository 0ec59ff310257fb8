"""The maker arithmetic (core/making.py): sizes that keep a full fill within the unhedged bound, hedges in
whole steps with the rest carried, repricing only when left behind, and the choice of the maker venue."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from core import making
from core.domain import Side, Venue
from exchanges.base import FeeRates

L, S = Side.LONG, Side.SHORT


def test_round_down_keeps_whole_steps_and_never_goes_negative() -> None:
    assert making.round_down(D("0.00379"), D("0.001")) == D("0.003")
    assert making.round_down(D("0.003"), D("0.001")) == D("0.003")
    assert making.round_down(D("-1"), D("0.001")) == 0


def test_chunk_is_the_bound_in_whole_coarser_steps() -> None:
    assert making.chunk(D(50), D(65000), D("0.0001")) == D("0.0007")  # 0.000769...
    assert making.chunk(D(50), D(65000), D("0.001")) == 0  # below one step: nothing may rest


def test_maker_size_leaves_room_for_the_lead_and_stops_at_the_target() -> None:
    done = {L: D("0.003"), S: D("0.001")}
    # Long leads by 0.002: a full fill of 0.005 - 0.002 keeps the imbalance at the chunk.
    assert making.maker_size(done, L, D(1), D("0.005"), D("0.001")) == D("0.003")
    # Short lags: it may rest a whole chunk (its fill only narrows the lead first).
    assert making.maker_size(done, S, D(1), D("0.005"), D("0.001")) == D("0.005")
    # Near the target: only what is missing.
    assert making.maker_size(done, S, D("0.0025"), D("0.005"), D("0.001")) == D("0.001")
    # A lead as big as the chunk: nothing more rests on that side.
    assert making.maker_size({L: D("0.005"), S: D(0)}, L, D(1), D("0.005"), D("0.001")) == 0


@pytest.mark.parametrize("filled", [D("0.0012"), D("0.0019")])
def test_hedge_size_hedges_whole_steps_and_carries_the_rest(filled: D) -> None:
    done = {L: filled, S: D(0)}
    assert making.hedge_size(done, S, D("0.001"), D("0.001")) == D("0.001")


def test_hedge_size_is_zero_below_the_minimum_or_without_a_lead() -> None:
    assert making.hedge_size({L: D("0.0009"), S: D(0)}, S, D("0.0001"), D("0.001")) == 0
    assert making.hedge_size({L: D("0.002"), S: D("0.002")}, S, D("0.001"), D("0.001")) == 0
    assert making.hedge_size({L: D(0), S: D("0.002")}, S, D("0.001"), D("0.001")) == 0  # short leads: no hedge
    assert making.hedge_size({L: D(0), S: D("0.002")}, L, D("0.001"), D("0.001")) == D("0.002")


def test_rest_price_joins_the_own_side_of_the_book() -> None:
    assert making.rest_price(True, D(100), D(101)) == D(100)
    assert making.rest_price(False, D(100), D(101)) == D(101)


def test_reprice_only_when_the_touch_left_the_order_behind_by_more_than_the_ticks() -> None:
    tick = D("0.1")
    assert not making.should_reprice(True, D(100), D("100.2"), D("100.3"), tick, 2)  # 2 ticks: stays
    assert making.should_reprice(True, D(100), D("100.3"), D("100.4"), tick, 2)  # 3 ticks: moves up
    assert not making.should_reprice(True, D(100), D("99.5"), D("99.6"), tick, 2)  # through it: it fills there
    assert making.should_reprice(False, D(100), D("99.6"), D("99.7"), tick, 2)  # a sell left above the ask
    assert not making.should_reprice(False, D(100), D("100.5"), D("100.6"), tick, 2)
    assert making.should_reprice(True, D(100), D("100.1"), D("100.2"), tick, 0)  # the lagging leg: any tick
    assert not making.should_reprice(True, D(100), None, D("100.2"), tick, 0)  # no touch: stay


def test_auto_picks_the_venue_that_saves_most_and_points_weigh_in() -> None:
    venues = (Venue.BACKPACK, Venue.HIBACHI)
    fees = {Venue.BACKPACK: FeeRates(D("0.0002"), D("0.0005")), Venue.HIBACHI: FeeRates(D("0.00015"), D("0.00055"))}
    assert making.choose_maker("auto", venues, fees, {}).venue is Venue.HIBACHI  # 4 bps saved against 3
    points = {Venue.BACKPACK: D(1)}  # a maker USD on Backpack earns a point: 3 x 2 = 6 > 4
    assert making.choose_maker("auto", venues, fees, points).venue is Venue.BACKPACK
    even = {v: FeeRates(D("0.0002"), D("0.0005")) for v in venues}
    assert making.choose_maker("auto", venues, even, {}).venue is Venue.BACKPACK  # a tie: the first venue
    assert making.choose_maker("hibachi", venues, {}, {}).venue is Venue.HIBACHI
    rebate = {Venue.BACKPACK: FeeRates(D("-0.0001"), D("0.0004")), Venue.HIBACHI: FeeRates(D("0.0001"), D("0.0005"))}
    assert making.choose_maker("auto", venues, rebate, {}).venue is Venue.BACKPACK  # a rebate saves 5 bps
