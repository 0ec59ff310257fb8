"""The real engine in paper mode on live prices, with standalone simulators on 127.0.0.1 posing as the live
venues: a pair opens and closes at each venue's own touch, and a stale live touch makes the open fail clean."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal as D
from typing import Any

import pytest

from core.domain import OrderPurpose, PairState, Venue
from exchanges.backpack.sim import BackpackSim
from exchanges.hibachi.sim import HibachiSim
from tests.helpers import wait_until
from tests.system.conftest import Running

Factory = Callable[..., Running]
BTC_ONLY = [{"name": "BTC", "backpack_symbol": "BTC_USDC_PERP", "hibachi_symbol": "BTC/USDT-P"}]


@pytest.fixture
def live_venues() -> Iterator[tuple[BackpackSim, HibachiSim]]:
    """The "live" venues: their public endpoints are all the paper venues read; nothing is sent to them."""
    bp, hb = BackpackSim(seed=21).start(), HibachiSim(seed=22).start()
    yield bp, hb
    bp.stop()
    hb.stop()


def _pin(sim: BackpackSim | HibachiSim, price: str) -> None:
    """Hold the live venue's BTC still at `price`: its touch is then price -/+ one tick (0.1)."""
    sim.freeze("BTC")
    sim.prices.set_price("BTC", D(price))


def _fills(run: Running, pair_id: int, purpose: OrderPurpose) -> dict[Venue, D | None]:
    return {o.venue: o.avg_price for o in run.repo.orders_for_pair(pair_id) if o.purpose is purpose}


def test_a_pair_opens_and_closes_at_each_live_venues_touch_and_a_stale_one_fails_the_open(
    engine_factory: Factory,
    live_venues: tuple[BackpackSim, HibachiSim],
) -> None:
    live_bp, live_hb = live_venues
    _pin(live_bp, "70000")
    _pin(live_hb, "70300")
    overrides: dict[str, Any] = {
        "paper": {
            "prices": "live", "live_backpack_rest_url": live_bp.rest_url, "live_backpack_ws_url": live_bp.ws_url,
            "live_hibachi_data_url": live_hb.data_api_url, "live_hibachi_ws_url": live_hb.ws_market_url,
            "live_max_age_s": 1,
        },
        "trading": {"markets": BTC_ONLY, "min_duration_hours": "0.1", "max_duration_hours": "0.1"},
    }  # fmt: skip
    run = engine_factory(overrides)
    status = run.runtime.command("status", {})
    assert status["paper_prices"]["source"] == "live"  # the engine hands [paper] to the venues
    paper = run.runtime.paper
    assert paper is not None

    opened = run.wait_pair(PairState.OPEN, what="a pair opened on live prices")
    run.runtime.command("pause", {"reason": "test: one pair at a time"})
    # Long on Backpack at Backpack's ask, short on Hibachi at Hibachi's bid: each venue's own book.
    assert _fills(run, opened.id, OrderPurpose.OPEN) == {Venue.BACKPACK: D("70000.1"), Venue.HIBACHI: D("70299.9")}

    # The live venues move apart; the close follows each one's new touch.
    _pin(live_bp, "69000")
    _pin(live_hb, "71000")
    wait_until(lambda: paper.backpack.engine.book("BTC_USDC_PERP")[0][0][0] == D("68999.9"), 5, "Backpack's move")
    wait_until(lambda: paper.hibachi.engine.book("BTC/USDT-P")[1][0][0] == D("71000.1"), 5, "Hibachi's move")
    run.runtime.command("close", {"id": opened.id})
    closed = run.wait_pair(PairState.CLOSED)
    assert _fills(run, closed.id, OrderPurpose.CLOSE) == {Venue.BACKPACK: D("68999.9"), Venue.HIBACHI: D("71000.1")}
    legs = {leg.venue: leg for leg in run.repo.positions_for_pair(closed.id)}
    q = closed.quantity
    assert legs[Venue.BACKPACK].realized_pnl == (D("68999.9") - D("70000.1")) * q
    assert legs[Venue.HIBACHI].realized_pnl == (D("70299.9") - D("71000.1")) * q

    # Backpack's live data stops (quiet websocket, REST answering 503): the next open is refused there and
    # rolled back on Hibachi, never filled at Backpack's old price.
    live_bp.engine.faults.fail_requests(100_000, 503)
    follower = paper.venues[Venue.BACKPACK].live
    assert follower is not None
    wait_until(lambda: (qt := follower.quote("BTC_USDC_PERP")) is not None and qt.age_s > 1, 5, "a stale touch")
    run.runtime.command("resume", {})
    failed = run.wait_pair(PairState.FAILED, what="the open refused on a stale live price")
    assert "live price of BTC_USDC_PERP is" in (failed.close_reason or "")
    assert paper.backpack.engine.refused_stale >= 1
    assert len(paper.backpack.account().orders) == 2  # the first pair's open and close: nothing since
    wait_until(lambda: not any(p.quantity for s in (paper.backpack, paper.hibachi)
                               for p in s.account().positions.values()), 10, "flat on both paper venues")  # fmt: skip
    status = run.runtime.paper.price_status()  # type: ignore[union-attr]
    assert status["backpack"]["rest"] == live_bp.rest_url and status["backpack"]["age_s"]["BTC_USDC_PERP"] > 1
    assert not live_bp.account().orders and not live_hb.account().orders  # nothing ever reached the live venues
