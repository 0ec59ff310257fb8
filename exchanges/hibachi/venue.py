"""Hibachi as the registry knows it: its client and feed, its paper simulator, its client ids."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.clock import Clock
from core.config import Settings
from core.domain import Venue
from exchanges.feed import PriceFeed
from exchanges.hibachi.client import HibachiClient
from exchanges.hibachi.feed import hibachi_feed
from exchanges.hibachi.ids import HIBACHI_IDS
from exchanges.hibachi.signing import make_signer
from exchanges.hibachi.sim import DEFAULT_CONTRACTS, HibachiSim
from exchanges.paper_live import HIBACHI_REFUSAL, LivePriceConfig, follow_hibachi, live_engine
from exchanges.registry import PaperStart, PaperVenue, VenueFactory, VenueSpec


def _secret(value: Any) -> str | None:
    return None if value is None else value.get_secret_value()


def connect(settings: Settings, clock: Clock, symbols: Sequence[str], sim: HibachiSim | None) -> VenueFactory:
    """The factory of Hibachi's client and feed: the real venue from `[hibachi]`, or the paper simulator."""
    h = settings.hibachi
    api, data, ws = h.api_url, h.data_api_url, h.ws_market_url
    key, account = _secret(h.api_key), h.account_id
    signer_args: tuple[str, str | None, str | None] | None = None
    if h.key_type is not None:
        signer_args = (h.key_type.value, _secret(h.hmac_secret), _secret(h.private_key))
    if sim is not None:
        api, data, ws = sim.api_url, sim.data_api_url, sim.ws_market_url
        key, account = sim.paper.api_key, sim.paper.account_id
        signer_args = ("hmac", sim.paper.hmac_secret, None)
    stale = float(settings.monitor.feed_stale_after_s)
    timeout = float(settings.timings.venue_timeout_s)

    def factory() -> tuple[HibachiClient, PriceFeed]:
        signer = None
        if signer_args is not None:
            kind, secret, private = signer_args
            signer = make_signer(kind, hmac_secret=secret, private_key=private)
        client = HibachiClient(
            api,
            data,
            key,
            account,
            signer,
            clock=clock,
            nonce_window_s=float(h.nonce_window_s),
            read_timeout_s=timeout,
            requests_per_s=float(h.requests_per_s),
        )
        return client, hibachi_feed(ws, list(symbols), clock, reconnect_max_s=min(30, stale))

    return factory


def simulate(start: PaperStart) -> PaperVenue:
    """Hibachi's paper simulator on the shared prices, or following Hibachi's public market data."""
    live = LivePriceConfig.from_paper(start.paper)
    options: dict[str, Any] = {}
    follower = None
    if live is not None:
        follower = follow_hibachi(live, [c.market.symbol for c in DEFAULT_CONTRACTS], start.clock).start()
        # A paper market trades only if its live venue lists it (answered a first REST read).
        options = {
            "contracts": [c for c in DEFAULT_CONTRACTS if c.market.symbol in follower.symbols],
            "engine_factory": live_engine(follower, live, HIBACHI_REFUSAL),
        }
    try:
        sim = HibachiSim(start.prices, start.clock, seed=start.seed, collateral=start.collateral, **options)
    except BaseException:
        if follower is not None:
            follower.stop()
        raise
    return PaperVenue(sim, follower)


SPEC = VenueSpec(Venue.HIBACHI, "Hibachi", HIBACHI_IDS, connect, simulate)
