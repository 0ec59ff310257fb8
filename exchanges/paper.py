"""Paper mode: each traded venue's simulator on loopback, moving on one shared price source or on live prices.

The real clients are then pointed at them, so paper mode runs exactly the code that trades for real. With
a state directory the simulators keep their accounts, positions and orders on disk (saved after every
change, before the reply leaves), so a supervisor killed with `kill -9` finds them where it left them.
With `paper.prices = "live"` each simulator takes its book, mark and funding from its own real venue's
public market data instead (exchanges/paper_live.py); matching, margin and fees stay the simulator's.
Which simulator a venue has is its registry entry's business (exchanges/registry.py).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.clock import Clock
from core.config import ConfigError, PaperConfig
from core.domain import Venue
from exchanges.paper_live import LivePriceConfig
from exchanges.registry import PaperStart, PaperVenue, VenueSpec, check_registered
from exchanges.sim.admin import order_log
from exchanges.sim.live_prices import LiveVenuePrices
from exchanges.sim.price import PriceSource
from exchanges.sim.store import SimStore, dump_engine_json, dump_prices, load_engine
from exchanges.venue_parts import paper_account_name

log = logging.getLogger(__name__)

STATE_FILE = "paper-venues.json"
SAVE_EVERY_S = 2.0  # prices move without requests: saved this often too
DEFAULT_VENUES = (Venue.BACKPACK, Venue.HIBACHI)


@dataclass
class PaperVenues:
    """The running simulators by venue, their shared prices (or each one's live venue), and where their state
    is kept."""

    prices: PriceSource
    venues: dict[Venue, PaperVenue]
    store: SimStore | None = None
    live: LivePriceConfig | None = None
    # The paper host's accounts: name -> venue -> the venue section's fields (URLs and keys) that reach it.
    accounts: dict[str, dict[Venue, dict[str, Any]]] = field(default_factory=dict)
    _saved: dict[Venue, int] | None = None
    # Each venue's accounts as last encoded for a save: a save re-encodes only those changed since.
    _encoded: dict[Venue, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    # Group commit (save_if_changed): how many saves were started and finished, and whether one is running.
    _commits: threading.Condition = field(default_factory=threading.Condition)
    _saves_started: int = 0
    _saves_finished: int = 0
    _saving: bool = False

    @classmethod
    def start(
        cls,
        clock: Clock,
        *,
        seed: int = 0,
        collateral: Decimal = Decimal(10000),
        state_dir: Path | None = None,
        paper: PaperConfig | None = None,
        venues: Sequence[Venue] = DEFAULT_VENUES,
        accounts: Sequence[str] = (),
    ) -> PaperVenues:
        """Start a simulator per venue on free loopback ports, from their saved state if there is one; with
        `paper.prices = "live"`, priced by the real venues' public market data (VenueError if unreachable).
        Each of `accounts` gets an account of its own on every simulator (see credentials()), funded with
        `collateral` when new, its keys drawn from `seed` and its name (a restart finds the same ones)."""
        specs = check_registered(venues)
        _check_accounts(specs, accounts)
        store = SimStore(state_dir / STATE_FILE) if state_dir is not None else None
        saved = store.load() if store is not None else None
        prices = PriceSource(
            clock,
            seed=seed,
            prices={a: Decimal(p) for a, p in saved["prices"].items()} if saved else None,
            volatility=float((paper or PaperConfig()).volatility),  # PriceSource walks in floats
        )
        paper = paper or PaperConfig()
        live = LivePriceConfig.from_paper(paper)
        begin = PaperStart(prices, clock, seed, collateral, paper)
        built: dict[Venue, PaperVenue] = {}
        try:
            for spec in specs:
                built[spec.venue] = spec.simulate(begin)
            if live is not None:
                log.info("paper venues on live prices from %s", ", ".join(str(f.url) for f in _followed(built)))
            if store is not None and saved is not None:
                for venue, pv in built.items():
                    if venue.value in saved:  # a venue added since keeps its fresh account
                        load_engine(pv.sim.engine, saved[venue.value])
                log.info("paper venues restored from %s", store.path)
            # After the restore: an account saved before keeps its collateral, positions and orders.
            opened = {
                name: {s.venue: _open_account(s, built[s.venue].sim, name, collateral, seed) for s in specs}
                for name in accounts
            }
        except BaseException:
            for follower in _followed(built):
                follower.stop()
            raise
        paper_venues = cls(prices, built, store, live, opened)
        if store is not None:
            for pv in built.values():
                pv.sim.http.after_request = paper_venues.save_if_changed
            paper_venues.save()
            threading.Thread(target=paper_venues._save_loop, name="paper-store", daemon=True).start()
        started: list[PaperVenue] = []
        try:
            for pv in built.values():
                pv.sim.start()
                started.append(pv)
        except BaseException:
            for pv in started:
                pv.sim.stop()
            paper_venues._stop_live()
            raise
        return paper_venues

    def sim(self, venue: Venue) -> Any:
        """The simulator of `venue`."""
        return self.venues[venue].sim

    # Shortcuts for the two venues the tests and tools drive by name.
    @property
    def backpack(self) -> Any:
        """Backpack's simulator."""
        return self.sim(Venue.BACKPACK)

    @property
    def hibachi(self) -> Any:
        """Hibachi's simulator."""
        return self.sim(Venue.HIBACHI)

    def credentials(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Each account's venue sections by venue name: the URLs and keys that reach it (secrets included)."""
        return {
            name: {venue.value: dict(fields) for venue, fields in venues.items()}
            for name, venues in self.accounts.items()
        }

    def admin_urls(self) -> dict[str, str]:
        """Each simulator's admin endpoint by venue name (GET <url>/orders reads its order log)."""
        return {venue.value: f"{pv.sim.http.url}/_sim" for venue, pv in self.venues.items()}

    def order_log(self, account: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """Each simulator's order log by venue name (of the paper account `account` alone if given): the
        orders it saw, oldest first, each with its sender (see exchanges/sim/order_log.py)."""
        engine_account = None if account is None else paper_account_name(account)
        return {
            venue.value: order_log(pv.sim.engine, account=engine_account)["orders"] for venue, pv in self.venues.items()
        }

    def price_status(self) -> dict[str, Any]:
        """Where paper prices come from, for `status`: the seeded walk, or each live venue with its ages."""
        followed = {venue: pv.live for venue, pv in self.venues.items() if pv.live is not None}
        if self.live is None or len(followed) != len(self.venues):
            return {"source": "simulated"}
        return {
            "source": "live",
            "max_age_s": self.live.max_age_s,
            **{venue.value: follower.status() for venue, follower in followed.items()},
        }

    def save(self) -> None:
        """Write every venue's state now."""
        if self.store is None:
            return
        with self._lock:
            parts = {"prices": json.dumps(dump_prices(self.prices))}
            versions: dict[Venue, int] = {}
            for venue, pv in self.venues.items():
                parts[venue.value], versions[venue] = dump_engine_json(pv.sim.engine, self._encoded[venue])
            self.store.save_parts(parts)
            self._saved = versions

    def save_if_changed(self) -> None:
        """Return once every change made before this call is on disk (at once if there was none).

        A group commit: a save started after the change is needed, and one save serves every request waiting
        when it starts. Saving after each request in turn took seconds per order with fifty paper accounts on
        one host (each save writes every account's state), and the replies waited in line for it."""
        with self._commits:
            if {venue: pv.sim.engine.version for venue, pv in self.venues.items()} == self._saved:
                return  # the last finished save already holds every change so far, this caller's among them
            needed = self._saves_started + 1  # one running now may have read the state before this change
            while self._saves_finished < needed:
                if self._saving:
                    self._commits.wait()
                    continue
                self._saving = True
                self._saves_started += 1
                mine = self._saves_started
                self._commits.release()
                saved = False
                try:
                    self.save()
                    saved = True
                finally:
                    self._commits.acquire()
                    self._saving = False
                    if saved:  # a failed save leaves the waiting requests to try again, each raising its error
                        self._saves_finished = mine
                    self._commits.notify_all()

    def _save_loop(self) -> None:
        while not self._stop.wait(SAVE_EVERY_S):
            try:
                self.save()
            except OSError as exc:
                log.error("paper venues not saved: %s", exc)  # noqa: TRY400

    def stop(self) -> None:
        """Save and stop every simulator."""
        self._stop.set()
        self.save()
        for pv in self.venues.values():
            pv.sim.stop()
        self._stop_live()

    def _stop_live(self) -> None:
        for follower in _followed(self.venues):
            follower.stop()


def _check_accounts(specs: Sequence[VenueSpec], accounts: Sequence[str]) -> None:
    """ConfigError unless every venue can open accounts and no name comes twice."""
    problems = [f"paper host: {s.title} cannot open paper accounts" for s in specs if accounts and not s.paper_account]
    problems += [f"paper host: account {n!r} is named twice" for n in sorted(set(accounts)) if accounts.count(n) > 1]
    if problems:
        raise ConfigError(problems)


def _open_account(spec: VenueSpec, sim: Any, name: str, collateral: Decimal, seed: int) -> dict[str, Any]:
    if spec.paper_account is None:  # _check_accounts refused this before anything started
        raise ConfigError([f"paper host: {spec.title} cannot open paper accounts"])
    return spec.paper_account(sim, name, collateral, seed)


def _followed(venues: dict[Venue, PaperVenue]) -> list[LiveVenuePrices]:
    return [pv.live for pv in venues.values() if pv.live is not None]
