"""What every venue's venue.py builds its SPEC from: credentials as text, and a paper simulator on live prices."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from core.clock import Clock
from exchanges.paper_live import LivePriceConfig, live_engine
from exchanges.registry import PaperStart, PaperVenue
from exchanges.sim.live_prices import LiveVenuePrices

T = TypeVar("T")  # one entry of a venue's simulator catalogue (a market, a contract)
Follow = Callable[[LivePriceConfig, list[str], Clock], LiveVenuePrices]


def paper_account_name(name: str) -> str:
    """The simulator's account behind the paper host's account `name` (apart from its own "paper" account)."""
    return f"account:{name}"


def paper_account_rng(seed: int, name: str) -> random.Random:
    """The draws of one paper host account's keys: the same for the same seed and name, on every start."""
    return random.Random(f"{seed}:{name}")  # noqa: S311 - simulator keys, reproducible on purpose


def secret_text(value: Any) -> str | None:
    """A configured secret (a pydantic SecretStr, or None) as plain text for a client."""
    return None if value is None else value.get_secret_value()


def simulate_paper(
    start: PaperStart,
    build: Callable[..., Any],
    *,
    follow: Follow,
    refusal_code: str | int,
    catalogue: Sequence[T],
    symbol_of: Callable[[T], str],
    catalogue_option: str,
) -> PaperVenue:
    """A venue's paper simulator, `build(**options)`, on the shared prices; or, on live prices, following its
    real venue (`follow`) with only the `catalogue` entries the real venue lists, passed as `catalogue_option`."""
    live = LivePriceConfig.from_paper(start.paper)
    options: dict[str, Any] = {"publish_interval_s": float(start.paper.publish_interval_s)}
    follower = None
    if live is not None:
        follower = follow(live, [symbol_of(entry) for entry in catalogue], start.clock).start()
        # A paper market trades only if its live venue lists it (answered a first REST read).
        options |= {
            catalogue_option: [entry for entry in catalogue if symbol_of(entry) in follower.symbols],
            "engine_factory": live_engine(follower, live, refusal_code),
        }
    try:
        sim = build(**options)
    except BaseException:
        # The simulator never came up: stop the follower too, or its threads outlive the failed start.
        if follower is not None:
            follower.stop()
        raise
    return PaperVenue(sim, follower)
