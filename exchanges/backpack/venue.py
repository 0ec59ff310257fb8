"""Backpack as the registry knows it: its client and feed, its paper simulator, its client ids."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from core.clock import Clock
from core.config import Settings
from core.domain import Venue
from exchanges.backpack.client import BackpackClient
from exchanges.backpack.feed import backpack_feed
from exchanges.backpack.ids import BACKPACK_IDS
from exchanges.backpack.sim import DEFAULT_MARKETS, BackpackSim
from exchanges.feed import PriceFeed
from exchanges.paper_live import BACKPACK_REFUSAL, follow_backpack
from exchanges.registry import PaperStart, PaperVenue, VenueFactory, VenueSpec
from exchanges.venue_parts import paper_account_name, paper_account_rng, secret_text, simulate_paper


def connect(settings: Settings, clock: Clock, symbols: Sequence[str], sim: BackpackSim | None) -> VenueFactory:
    """The factory of Backpack's client and feed: the real venue from `[backpack]`, or the paper simulator."""
    b = settings.backpack
    url, ws, key, secret = b.rest_url, b.ws_url, secret_text(b.api_key), secret_text(b.api_secret)
    account_ws = b.account_stream_url()
    if sim is not None:
        url, ws, key, secret = sim.rest_url, sim.ws_url, sim.api_key, sim.api_secret
        account_ws = sim.ws_url if account_ws is not None else None  # the simulator serves both on one socket
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
            account_ws_url=account_ws,
            stream_wait_s=float(b.stream_wait_s),
        )
        return client, backpack_feed(ws, list(symbols), clock, reconnect_max_s=min(30, stale))

    return factory


def simulate(start: PaperStart) -> PaperVenue:
    """Backpack's paper simulator on the shared prices, or following Backpack's public market data."""

    def build(**options: Any) -> BackpackSim:
        return BackpackSim(start.prices, start.clock, seed=start.seed, collateral=start.collateral, **options)

    return simulate_paper(
        start,
        build,
        follow=follow_backpack,
        refusal_code=BACKPACK_REFUSAL,
        catalogue=DEFAULT_MARKETS,
        symbol_of=lambda m: m.symbol,
        catalogue_option="markets",
    )


def paper_account(sim: BackpackSim, name: str, collateral: Decimal, seed: int) -> dict[str, Any]:
    """Open (or find, after a restore) account `name` on the simulator, with an ed25519 key pair drawn from
    `seed` and `name`; returns the `[backpack]` fields that reach it."""
    rng = paper_account_rng(seed, name)
    secret, key = sim.add_account(paper_account_name(name), collateral, bytes(rng.getrandbits(8) for _ in range(32)))
    return {
        "rest_url": sim.rest_url,
        "ws_url": sim.ws_url,
        "account_ws_url": sim.ws_url,  # the simulator serves both on one socket, as Backpack does
        "api_key": key,
        "api_secret": secret,
    }


SPEC = VenueSpec(Venue.BACKPACK, "Backpack", BACKPACK_IDS, connect, simulate, paper_account=paper_account)
