"""Paper mode: both venue simulators on loopback, moving on one shared price source or on live prices.

The real clients are then pointed at them, so paper mode runs exactly the code that trades for real. With
a state directory the simulators keep their accounts, positions and orders on disk (saved after every
change, before the reply leaves), so a supervisor killed with `kill -9` finds them where it left them.
With `paper.prices = "live"` each simulator takes its book, mark and funding from its own real venue's
public market data instead (exchanges/paper_live.py); matching, margin and fees stay the simulator's.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.clock import Clock
from core.config import PaperConfig
from exchanges.backpack.sim import DEFAULT_MARKETS, BackpackSim
from exchanges.hibachi.sim import DEFAULT_CONTRACTS, HibachiSim
from exchanges.paper_live import (
    BACKPACK_REFUSAL,
    HIBACHI_REFUSAL,
    LivePriceConfig,
    follow_backpack,
    follow_hibachi,
    live_engine,
)
from exchanges.sim.live_prices import LiveVenuePrices
from exchanges.sim.price import PriceSource
from exchanges.sim.store import SimStore, dump_engine, dump_prices, load_engine

log = logging.getLogger(__name__)

STATE_FILE = "paper-venues.json"
SAVE_EVERY_S = 2.0  # prices move without requests: saved this often too


@dataclass
class PaperVenues:
    """The two running simulators, their shared prices (or each one's live venue), and where their state is kept."""

    prices: PriceSource
    backpack: BackpackSim
    hibachi: HibachiSim
    store: SimStore | None = None
    live: LivePriceConfig | None = None
    backpack_live: LiveVenuePrices | None = None
    hibachi_live: LiveVenuePrices | None = None
    _saved: tuple[int, int] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def start(
        cls,
        clock: Clock,
        *,
        seed: int = 0,
        collateral: Decimal = Decimal(10000),
        state_dir: Path | None = None,
        paper: PaperConfig | None = None,
    ) -> PaperVenues:
        """Start both simulators on free loopback ports, from their saved state if there is one; with
        `paper.prices = "live"`, priced by the real venues' public market data (VenueError if unreachable)."""
        store = SimStore(state_dir / STATE_FILE) if state_dir is not None else None
        saved = store.load() if store is not None else None
        prices = PriceSource(
            clock, seed=seed, prices={a: Decimal(p) for a, p in saved["prices"].items()} if saved else None
        )
        live = LivePriceConfig.from_paper(paper) if paper is not None else None
        backpack_live = hibachi_live = None
        bp_options: dict[str, Any] = {}
        hb_options: dict[str, Any] = {}
        if live is not None:
            backpack_live, hibachi_live = _follow_live(live, clock)
            # A paper market trades only if its live venue lists it (answered a first REST read).
            bp_options = {
                "markets": [m for m in DEFAULT_MARKETS if m.symbol in backpack_live.symbols],
                "engine_factory": live_engine(backpack_live, live, BACKPACK_REFUSAL),
            }
            hb_options = {
                "contracts": [c for c in DEFAULT_CONTRACTS if c.market.symbol in hibachi_live.symbols],
                "engine_factory": live_engine(hibachi_live, live, HIBACHI_REFUSAL),
            }
            log.info("paper venues on live prices from %s and %s", live.backpack_rest_url, live.hibachi_data_url)
        try:
            backpack = BackpackSim(prices, clock, seed=seed, collateral=collateral, **bp_options)
            hibachi = HibachiSim(prices, clock, seed=seed, collateral=collateral, **hb_options)
            if saved is not None:
                load_engine(backpack.engine, saved["backpack"])
                load_engine(hibachi.engine, saved["hibachi"])
                log.info("paper venues restored from %s", store.path)  # type: ignore[union-attr]
        except BaseException:
            for follower in (backpack_live, hibachi_live):
                if follower is not None:
                    follower.stop()
            raise
        venues = cls(prices, backpack, hibachi, store, live, backpack_live, hibachi_live)
        if store is not None:
            backpack.http.after_request = venues.save_if_changed
            hibachi.http.after_request = venues.save_if_changed
            venues.save()
            threading.Thread(target=venues._save_loop, name="paper-store", daemon=True).start()
        backpack.start()
        try:
            hibachi.start()
        except BaseException:
            backpack.stop()
            venues._stop_live()
            raise
        return venues

    def price_status(self) -> dict[str, Any]:
        """Where paper prices come from, for `status`: the seeded walk, or each live venue with its ages."""
        if self.live is None or self.backpack_live is None or self.hibachi_live is None:
            return {"source": "simulated"}
        return {
            "source": "live",
            "max_age_s": self.live.max_age_s,
            "backpack": self.backpack_live.status(),
            "hibachi": self.hibachi_live.status(),
        }

    def save(self) -> None:
        """Write both venues' state now."""
        if self.store is None:
            return
        with self._lock:
            state = {
                "prices": dump_prices(self.prices),
                "backpack": dump_engine(self.backpack.engine),
                "hibachi": dump_engine(self.hibachi.engine),
            }
            self.store.save(state)
            self._saved = (state["backpack"]["version"], state["hibachi"]["version"])

    def save_if_changed(self) -> None:
        """Write the state if an order, fill, funding or setting changed since the last write."""
        if (self.backpack.engine.version, self.hibachi.engine.version) != self._saved:
            self.save()

    def _save_loop(self) -> None:
        while not self._stop.wait(SAVE_EVERY_S):
            try:
                self.save()
            except OSError as exc:
                log.error("paper venues not saved: %s", exc)  # noqa: TRY400

    def stop(self) -> None:
        """Save and stop both simulators."""
        self._stop.set()
        self.save()
        self.backpack.stop()
        self.hibachi.stop()
        self._stop_live()

    def _stop_live(self) -> None:
        for follower in (self.backpack_live, self.hibachi_live):
            if follower is not None:
                follower.stop()


def _follow_live(live: LivePriceConfig, clock: Clock) -> tuple[LiveVenuePrices, LiveVenuePrices]:
    """Start following both live venues for every paper market (VenueError when one answers for none)."""
    backpack = follow_backpack(live, [m.symbol for m in DEFAULT_MARKETS], clock).start()
    try:
        hibachi = follow_hibachi(live, [c.market.symbol for c in DEFAULT_CONTRACTS], clock).start()
    except BaseException:
        backpack.stop()
        raise
    return backpack, hibachi
