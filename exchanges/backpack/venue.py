"""Backpack as the registry knows it: its client and feed, its paper simulator, its client ids."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.clock import Clock
from core.config import Settings
from core.domain import Venue
from exchanges.backpack.client import BackpackClient
from exchanges.backpack.feed import backpack_feed
from exchanges.backpack.ids import BACKPACK_IDS
from exchanges.backpack.sim import DEFAULT_MARKETS, BackpackSim
from exchanges.feed import PriceFeed
from exchanges.paper_live import BACKPACK_REFUSAL, LivePriceConfig, follow_backpack, live_engine
from exchanges.registry import PaperStart, PaperVenue, VenueFactory, VenueSpec


def _secret(value: Any) -> str | None:
    return None if value is None else value.get_secret_value()


def connect(settings: Settings, clock: Clock, symbols: Sequence[str], sim: BackpackSim | None) -> VenueFactory:
    """The factory of Backpack's client and feed: the real venue from `[backpack]`, or the paper simulator."""
    b = settings.backpack
    url, ws, key, secret = b.rest_url, b.ws_url, _secret(b.api_key), _secret(b.api_secret)
    if sim is not None:
        url, ws, key, secret = sim.rest_url, sim.ws_url, sim.api_key, sim.api_secret
    stale = float(settings.monitor.feed_stale_after_s)
    timeout = float(settings.timings.venue_timeout_s)

    def factory() -> tuple[BackpackClient, PriceFeed]:
        client = BackpackClient(
            url,
            key,
            secret,
            window_ms=b.window_ms,
            clock=clock,
            read_timeout_s=timeout,
            requests_per_s=float(b.requests_per_s),
        )
        return client, backpack_feed(ws, list(symbols), clock, reconnect_max_s=min(30, stale))

    return factory


def simulate(start: PaperStart) -> PaperVenue:
    """Backpack's paper simulator on the shared prices, or following Backpack's public market data."""
    live = LivePriceConfig.from_paper(start.paper)
    options: dict[str, Any] = {}
    follower = None
    if live is not None:
        follower = follow_backpack(live, [m.symbol for m in DEFAULT_MARKETS], start.clock).start()
        # A paper market trades only if its live venue lists it (answered a first REST read).
        options = {
            "markets": [m for m in DEFAULT_MARKETS if m.symbol in follower.symbols],
            "engine_factory": live_engine(follower, live, BACKPACK_REFUSAL),
        }
    try:
        sim = BackpackSim(start.prices, start.clock, seed=start.seed, collateral=start.collateral, **options)
    except BaseException:
        if follower is not None:
            follower.stop()
        raise
    return PaperVenue(sim, follower)


SPEC = VenueSpec(Venue.BACKPACK, "Backpack", BACKPACK_IDS, connect, simulate)
