"""Paper on live prices: each paper venue follows its own real venue's public market data, read only.

The project's own public clients and feeds do the reading (no keys: only public endpoints are called, and
no order ever leaves for a venue). Paper symbols are the real venues' symbols, so a paper market follows the
live market of the same name on the same venue: Backpack's book for the Backpack paper venue, Hibachi's for
Hibachi's.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from core.clock import Clock
from core.config import PaperConfig
from exchanges.backpack.client import BackpackClient
from exchanges.backpack.feed import backpack_feed
from exchanges.feed import PriceFeed
from exchanges.hibachi.client import HibachiClient
from exchanges.hibachi.feed import hibachi_feed
from exchanges.sim.live_engine import LiveSimEngine
from exchanges.sim.live_prices import LiveVenuePrices

# The venue-style refusal of an order on a stale price: both map to InvalidOrder in our clients (a definitive
# refusal, so an open rolls back at once instead of waiting out a lost-reply lookup).
BACKPACK_REFUSAL = "INVALID_ORDER"
HIBACHI_REFUSAL = 4  # invalid input (spec §4)
REST_READ_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class LivePriceConfig:
    """The live venues' public endpoints and how old a touch may be before paper orders are refused."""

    backpack_rest_url: str
    backpack_ws_url: str
    hibachi_data_url: str
    hibachi_ws_url: str
    max_age_s: float = 10.0

    @classmethod
    def from_paper(cls, paper: PaperConfig) -> LivePriceConfig | None:
        """The live configuration when `paper.prices = "live"`, else None."""
        if paper.prices != "live":
            return None
        return cls(
            paper.live_backpack_rest_url,
            paper.live_backpack_ws_url,
            paper.live_hibachi_data_url,
            paper.live_hibachi_ws_url,
            float(paper.live_max_age_s),
        )

    @property
    def rest_after_s(self) -> float:
        """A market whose feed is quiet this long is read over REST, well before its touch counts as stale."""
        return self.max_age_s / 2

    def options(self) -> dict[str, float]:
        """LiveVenuePrices timing derived from `max_age_s`."""
        return {"rest_after_s": self.rest_after_s, "poll_s": min(0.5, self.max_age_s / 4)}


def follow_backpack(config: LivePriceConfig, symbols: list[str], clock: Clock) -> LiveVenuePrices:
    """Backpack's bookTicker and markPrice streams, and its public REST quote (not started)."""
    client = BackpackClient(config.backpack_rest_url, clock=clock, read_timeout_s=REST_READ_TIMEOUT_S, get_retries=1)
    reconnect_max_s = max(1.0, config.rest_after_s)

    def feed(known: list[str]) -> PriceFeed:
        return backpack_feed(config.backpack_ws_url, known, clock, reconnect_max_s=reconnect_max_s)

    return LiveVenuePrices(
        "backpack", feed, client.quote, symbols, clock, url=config.backpack_rest_url, on_stop=client.close,
        **config.options(),
    )  # fmt: skip


def follow_hibachi(config: LivePriceConfig, symbols: list[str], clock: Clock) -> LiveVenuePrices:
    """Hibachi's ask_bid_price and mark_price topics, and its public prices endpoint (funding) (not started)."""
    # Only the data host is read; the trade host is never called without keys, so it gets the same URL.
    url = config.hibachi_data_url
    client = HibachiClient(url, url, clock=clock, read_timeout_s=REST_READ_TIMEOUT_S, get_retries=1)
    reconnect_max_s = max(1.0, config.rest_after_s)

    def feed(known: list[str]) -> PriceFeed:
        return hibachi_feed(config.hibachi_ws_url, known, clock, reconnect_max_s=reconnect_max_s)

    return LiveVenuePrices(
        "hibachi", feed, client.quote, symbols, clock, url=url, on_stop=client.close, **config.options()
    )


def live_engine(live: LiveVenuePrices, config: LivePriceConfig, refusal_code: str | int) -> partial[LiveSimEngine]:
    """An engine factory for a simulator: the simulator's matching on `live`'s prices."""
    return partial(LiveSimEngine, live=live, max_age_s=config.max_age_s, refusal_code=refusal_code)
