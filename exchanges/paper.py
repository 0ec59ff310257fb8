"""Paper mode: both venue simulators on loopback, moving on one shared price source.

The real clients are then pointed at them, so paper mode runs exactly the code that trades for real. With
a state directory the simulators keep their accounts, positions and orders on disk (saved after every
change, before the reply leaves), so a supervisor killed with `kill -9` finds them where it left them.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from core.clock import Clock
from exchanges.backpack.sim import BackpackSim
from exchanges.hibachi.sim import HibachiSim
from exchanges.sim.price import PriceSource
from exchanges.sim.store import SimStore, dump_engine, dump_prices, load_engine

log = logging.getLogger(__name__)

STATE_FILE = "paper-venues.json"
SAVE_EVERY_S = 2.0  # prices move without requests: saved this often too


@dataclass
class PaperVenues:
    """The two running simulators, their shared prices, and where their state is kept."""

    prices: PriceSource
    backpack: BackpackSim
    hibachi: HibachiSim
    store: SimStore | None = None
    _saved: tuple[int, int] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def start(
        cls, clock: Clock, *, seed: int = 0, collateral: Decimal = Decimal(10000), state_dir: Path | None = None
    ) -> PaperVenues:
        """Start both simulators on free loopback ports, from their saved state if there is one."""
        store = SimStore(state_dir / STATE_FILE) if state_dir is not None else None
        saved = store.load() if store is not None else None
        prices = PriceSource(
            clock, seed=seed, prices={a: Decimal(p) for a, p in saved["prices"].items()} if saved else None
        )
        backpack = BackpackSim(prices, clock, seed=seed, collateral=collateral)
        hibachi = HibachiSim(prices, clock, seed=seed, collateral=collateral)
        if saved is not None:
            load_engine(backpack.engine, saved["backpack"])
            load_engine(hibachi.engine, saved["hibachi"])
            log.info("paper venues restored from %s", store.path)  # type: ignore[union-attr]
        venues = cls(prices, backpack, hibachi, store)
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
            raise
        return venues

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
