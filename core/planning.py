"""Deciding a new pair: which market, which venue goes long, how much leverage, how big, how long. Pure.

Every refusal is a PlanDeclined with a sentence a person can act on; nothing here sends anything.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from core.config import DirectionPolicy, MarketConfig, TradingConfig
from core.domain import Venue
from core.sizing import QuantityRules, SizingError, draw_duration, draw_leverage, hedge_quantity


@dataclass(frozen=True, slots=True)
class VenueView:
    """What one venue says about a market right now."""

    venue: Venue
    symbol: str
    mark: Decimal
    step_size: Decimal
    min_quantity: Decimal
    min_notional: Decimal
    max_leverage: Decimal
    available: Decimal  # free collateral, USD
    funding_rate: Decimal | None = None
    # The touch and its middle when the decision was made: what the report prices each fill's spread against.
    bid: Decimal | None = None
    ask: Decimal | None = None
    tick_size: Decimal | None = None

    @property
    def mid(self) -> Decimal | None:
        """The middle of the touch (None when a side is missing)."""
        if self.bid is None or self.ask is None:
            return None
        return (self.bid + self.ask) / 2


@dataclass(frozen=True, slots=True)
class OpenPlan:
    """A pair ready to be recorded and sent."""

    market: str
    long: VenueView
    short: VenueView
    leverage: Decimal
    quantity: Decimal
    notional: Decimal
    duration: timedelta


@dataclass(frozen=True, slots=True)
class PlanDeclined:
    """No pair now, and why."""

    reason: str


def choose_market(rng: random.Random, markets: tuple[MarketConfig, ...]) -> MarketConfig:
    """One configured market, uniformly."""
    return markets[rng.randrange(len(markets))]


def choose_long_venue(
    policy: DirectionPolicy,
    rng: random.Random,
    funding: Mapping[Venue, Decimal | None],
    venues: Sequence[Venue],
) -> tuple[Venue, Venue]:
    """(long venue, short venue) of the pair's two `venues` (trading.venues). Fixed: the first is long.
    `funding` policy: the long goes where the rate is lower (longs pay less or receive), the short where it is
    higher; without both rates it falls back to the fixed direction."""
    first, second = venues
    fixed = (first, second)
    if policy is DirectionPolicy.RANDOM:
        return fixed if rng.randrange(2) == 0 else (fixed[1], fixed[0])
    if policy is DirectionPolicy.FUNDING:
        a, b = funding.get(fixed[0]), funding.get(fixed[1])
        if a is not None and b is not None and b < a:
            return fixed[1], fixed[0]
    return fixed


def plan_open(
    rng: random.Random,
    trading: TradingConfig,
    market: str,
    long: VenueView,
    short: VenueView,
) -> OpenPlan | PlanDeclined:
    """Draw leverage and duration and size the legs; decline when a venue's rules or collateral forbid it."""
    leverage = draw_leverage(rng, trading.min_leverage, trading.max_leverage)
    for view in (long, short):
        if leverage > view.max_leverage:
            return PlanDeclined(f"{view.venue}: leverage {leverage} is above the market's maximum {view.max_leverage}")
    price = max(long.mark, short.mark)  # size on the dearer mark: neither leg exceeds the notional
    try:
        quantity = hedge_quantity(
            trading.notional_usd,
            price,
            [QuantityRules(v.venue.value, v.step_size, v.min_quantity, v.min_notional) for v in (long, short)],
        )
    except SizingError as exc:
        return PlanDeclined(f"sizing: {exc}")
    for view in (long, short):
        needed = quantity * view.mark / leverage * trading.collateral_buffer
        if needed > view.available:
            return PlanDeclined(
                f"{view.venue}: free collateral {view.available:.2f} is below the {needed:.2f} needed "
                f"(notional {quantity * view.mark:.2f} / leverage {leverage} x buffer {trading.collateral_buffer})"
            )
    duration = draw_duration(rng, trading.min_duration_hours, trading.max_duration_hours)
    return OpenPlan(market, long, short, leverage, quantity, quantity * price, duration)
