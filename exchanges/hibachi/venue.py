"""Hibachi as the registry knows it: its client and feed, its paper simulator, its client ids."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
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
from exchanges.paper_live import HIBACHI_REFUSAL, follow_hibachi
from exchanges.registry import PaperStart, PaperVenue, VenueFactory, VenueSpec
from exchanges.venue_parts import paper_account_name, paper_account_rng, secret_text, simulate_paper


def connect(settings: Settings, clock: Clock, symbols: Sequence[str], sim: HibachiSim | None) -> VenueFactory:
    """The factory of Hibachi's client and feed: the real venue from `[hibachi]`, or the paper simulator."""
    h = settings.hibachi
    api, data, ws = h.api_url, h.data_api_url, h.ws_market_url
    key, account = secret_text(h.api_key), h.account_id
    account_ws = h.account_stream_url()
    signer_args: tuple[str, str | None, str | None] | None = None
    if h.key_type is not None:
        signer_args = (h.key_type.value, secret_text(h.hmac_secret), secret_text(h.private_key))
    if sim is not None:
        api, data, ws = sim.api_url, sim.data_api_url, sim.ws_market_url
        key, account = sim.paper.api_key, sim.paper.account_id
        signer_args = ("hmac", sim.paper.hmac_secret, None)
        account_ws = sim.ws_account_url() if account_ws is not None else None
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
            account_ws_url=account_ws,
            stream_wait_s=float(h.stream_wait_s),
        )
        return client, hibachi_feed(ws, list(symbols), clock, reconnect_max_s=min(30, stale))

    return factory


def simulate(start: PaperStart) -> PaperVenue:
    """Hibachi's paper simulator on the shared prices, or following Hibachi's public market data."""

    def build(**options: Any) -> HibachiSim:
        return HibachiSim(start.prices, start.clock, seed=start.seed, collateral=start.collateral, **options)

    return simulate_paper(
        start,
        build,
        follow=follow_hibachi,
        refusal_code=HIBACHI_REFUSAL,
        catalogue=DEFAULT_CONTRACTS,
        symbol_of=lambda c: c.market.symbol,
        catalogue_option="contracts",
    )


def paper_account(sim: HibachiSim, name: str, collateral: Decimal, seed: int) -> dict[str, Any]:
    """Open (or find, after a restore) account `name` on the simulator, its id and keys drawn from `seed` and
    `name`; returns the `[hibachi]` fields that reach it (HMAC signing)."""
    creds = sim.credentials_of(paper_account_name(name)) or sim.add_account(
        paper_account_name(name), collateral, paper_account_rng(seed, name)
    )
    return {
        "api_url": sim.api_url,
        "data_api_url": sim.data_api_url,
        "ws_market_url": sim.ws_market_url,
        # On the websocket server's own port (not api_url's, whence the default derives); the client adds
        # ?accountId=.
        "account_ws_url": f"ws://127.0.0.1:{sim.ws.port}/ws/account",
        "api_key": creds.api_key,
        "account_id": creds.account_id,
        "key_type": "hmac",
        "hmac_secret": creds.hmac_secret,
    }


# orderFlags is one value (spec: POST_ONLY | IOC | REDUCE_ONLY), so no order is both post-only and reduce-only.
SPEC = VenueSpec(
    Venue.HIBACHI, "Hibachi", HIBACHI_IDS, connect, simulate, post_only_reduce_only=False, paper_account=paper_account
)
