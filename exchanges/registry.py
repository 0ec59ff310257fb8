"""Every venue the farmer can trade on, by name, with what the rest of the program needs from it.

The rest of the program knows venues only as names (core.domain.Venue) and asks this registry for the rest:
how to connect (live) or simulate (paper), and the form of its client ids. Adding a venue: a folder under
exchanges/ whose venue.py defines SPEC (a VenueSpec), one line in BUILT_IN below, and its config section.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from core.config import ConfigError
from core.domain import Venue
from core.ids import ClientIdForm, OrderKey, mint

if TYPE_CHECKING:
    from core.clock import Clock
    from core.config import PaperConfig, Settings
    from exchanges.base import PerpExchange
    from exchanges.feed import PriceFeed
    from exchanges.sim.live_prices import LiveVenuePrices
    from exchanges.sim.price import PriceSource

# One line per venue: the module whose SPEC describes it.
BUILT_IN = (
    "exchanges.backpack.venue",
    "exchanges.hibachi.venue",
)

VenueFactory = Callable[[], "tuple[PerpExchange, PriceFeed | None]"]
# (simulator, account name, collateral, seed) -> the venue section's fields that reach that account.
PaperAccount = Callable[[Any, str, Decimal, int], dict[str, Any]]


@dataclass(frozen=True)
class PaperStart:
    """What a venue's simulator is built from in paper mode."""

    prices: PriceSource  # the seeded walk shared by every paper venue
    clock: Clock
    seed: int
    collateral: Decimal
    paper: PaperConfig  # paper.prices = "live": each simulator follows its real venue's public market data


@dataclass
class PaperVenue:
    """One venue's simulator (not started yet) and, on live prices, the follower of its real venue."""

    sim: Any  # a SimVenue (exchanges/sim/venue.py) with its `engine`, whose state paper mode saves and restores
    live: LiveVenuePrices | None = None

    @property
    def url(self) -> str:
        """Where the simulator answers REST, for the log."""
        return str(self.sim.http.url)

    def stop(self) -> None:
        """Stop the simulator and its follower."""
        try:
            self.sim.stop()
        finally:
            if self.live is not None:
                self.live.stop()


@dataclass(frozen=True)
class VenueSpec:
    """What the program needs from one venue.

    `connect(settings, clock, symbols, sim)` returns the factory that makes its client and price feed: against
    the real venue from `settings` when `sim` is None, else against that paper simulator. `simulate` builds
    its paper simulator (not started). `client_ids` is the form of its client order ids.
    `paper_account(sim, name, collateral, seed)` opens (or finds, after a restore) the account `name` on that
    simulator, its keys drawn from `seed` and `name` alone, and returns the venue section's fields (URLs and
    credentials) with which `connect(..., None)` reaches it as if it were the real venue (the paper host).
    """

    venue: Venue
    title: str  # for people: "Backpack"
    client_ids: ClientIdForm
    connect: Callable[[Settings, Clock, Sequence[str], Any | None], VenueFactory]
    simulate: Callable[[PaperStart], PaperVenue]
    # Whether one order may be both post-only and reduce-only. Where it may not (Hibachi's orderFlags holds a
    # single value), a maker close rests post-only alone, sized within what its leg holds.
    post_only_reduce_only: bool = True
    paper_account: PaperAccount | None = None  # None: the paper host cannot serve accounts on this venue


_specs: dict[Venue, VenueSpec] = {}
_loaded = False
_lock = threading.Lock()


def _load_built_in() -> None:
    global _loaded  # noqa: PLW0603 - loaded once, on first use: storage imports this module, not the clients
    with _lock:
        if _loaded:
            return
        for module in BUILT_IN:
            spec: VenueSpec = importlib.import_module(module).SPEC
            _specs.setdefault(spec.venue, spec)
        _loaded = True


def register(spec: VenueSpec) -> VenueSpec | None:
    """Add (or replace) a venue; returns the spec it replaced. For a venue outside BUILT_IN (tests)."""
    _load_built_in()
    with _lock:
        previous = _specs.get(spec.venue)
        _specs[spec.venue] = spec
    return previous


def unregister(venue: Venue, previous: VenueSpec | None = None) -> None:
    """Undo register(): restore `previous`, or forget the venue."""
    with _lock:
        if previous is None:
            _specs.pop(venue, None)
        else:
            _specs[venue] = previous


@contextmanager
def registered(spec: VenueSpec) -> Iterator[VenueSpec]:
    """`spec` registered for the duration of a `with` block."""
    previous = register(spec)
    try:
        yield spec
    finally:
        unregister(spec.venue, previous)


def known() -> list[Venue]:
    """Every registered venue, by name."""
    _load_built_in()
    return sorted(_specs)


def spec_of(venue: Venue) -> VenueSpec:
    """The registered spec of `venue`; ConfigError naming the known venues otherwise."""
    _load_built_in()
    found = _specs.get(venue)
    if found is None:
        raise ConfigError([f"venue '{venue}' is not registered; known venues: {', '.join(known())}"])
    return found


def check_registered(venues: Iterable[Venue]) -> list[VenueSpec]:
    """The specs of `venues` (trading.venues), or one ConfigError line per venue nobody registered."""
    _load_built_in()
    missing = [v for v in venues if v not in _specs]
    if missing:
        raise ConfigError(
            [
                f"trading.venues: {v} is not a registered venue (known: {', '.join(known())}; "
                f"a venue is added in exchanges/registry.py)"
                for v in missing
            ]
        )
    return [_specs[v] for v in venues]


def client_id_for(venue: Venue, key: OrderKey, namespace: str) -> str:
    """The client id of `key` in `venue`'s form, as text (what the orders table and the clients carry)."""
    return mint(spec_of(venue).client_ids, key, namespace)
