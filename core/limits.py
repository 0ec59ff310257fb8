"""Risk limits as pure rules: figures in, a trip decision with a human reason out. No I/O.

A trip is latched by the caller (kept in the database, opening blocked) until the operator clears it by name
with `resume --limit NAME`; what a trip closes is decided here too, so that the actors only carry it out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from core.domain import PairState, Venue

if TYPE_CHECKING:
    from core.config import LimitsConfig

DAY = timedelta(hours=24)
HOUR = timedelta(hours=1)


class Limit(StrEnum):
    """Every risk limit, named as its key in the `[limits]` section."""

    MAX_NOTIONAL = "max_notional_usd"
    MAX_DAILY_COST = "max_daily_cost_usd"
    MAX_DRAWDOWN = "max_drawdown_usd"
    MIN_COLLATERAL_RATIO_CLOSE = "min_collateral_ratio_close"
    MAX_NAKED_SECONDS = "max_naked_seconds"
    MAX_OPENS_PER_HOUR = "max_opens_per_hour"

    @property
    def key(self) -> str:
        """The configuration key, also the meta key its trip is kept under."""
        return f"limits.{self.value}"


def parse_limit(name: str) -> Limit:
    """The limit called `name`; ValueError naming the known ones otherwise."""
    try:
        return Limit(name)
    except ValueError:
        raise ValueError(f"unknown limit {name[:60]!r}; one of: {', '.join(Limit)}") from None


def bound(config: LimitsConfig, limit: Limit) -> Decimal:
    """The configured value of `limit`."""
    return Decimal(getattr(config, limit.value))


@dataclass(frozen=True, slots=True)
class Trip:
    """A limit broken: the figure against its bound, why (for a person), when, and where if it is one place."""

    limit: Limit
    figure: Decimal
    bound: Decimal
    reason: str
    at: datetime
    venue: Venue | None = None
    pair_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The trip as kept in the database (JSON-able; decimals as exact text)."""
        return {
            "figure": str(self.figure),
            "bound": str(self.bound),
            "reason": self.reason,
            "at": self.at.isoformat(),
            "venue": None if self.venue is None else self.venue.value,
            "pair_id": self.pair_id,
        }

    @classmethod
    def from_dict(cls, limit: Limit, d: Mapping[str, Any]) -> Trip:
        """A trip kept by `as_dict`."""
        venue = None if d.get("venue") is None else Venue(d["venue"])
        at = datetime.fromisoformat(d["at"])
        return cls(limit, Decimal(d["figure"]), Decimal(d["bound"]), d["reason"], at, venue, d.get("pair_id"))


@dataclass(frozen=True, slots=True)
class LegExposure:
    """What one leg of a live pair holds on its venue, in USD."""

    pair_id: int
    state: PairState
    venue: Venue
    notional: Decimal


def venue_exposure(legs: Iterable[LegExposure], venues: Iterable[Venue]) -> dict[Venue, Decimal]:
    """USD held per venue over every live leg: each of `venues` (the traded ones, 0 when empty) and any other
    venue a leg is still on."""
    out = dict.fromkeys(venues, Decimal(0))
    for leg in legs:
        out[leg.venue] = out.get(leg.venue, Decimal(0)) + leg.notional
    return out


def pair_to_shed(venue: Venue, legs: Iterable[LegExposure]) -> int | None:
    """The OPEN pair whose leg on `venue` holds most (the oldest on a tie): closing it frees most margin there,
    since its maintenance requirement goes while the equity stays. None when no OPEN pair is there."""
    held = [(leg.notional, -leg.pair_id) for leg in legs if leg.venue is venue and leg.state is PairState.OPEN]
    return -max(held)[1] if held else None


def daily_cost(booked: Iterable[tuple[datetime | None, Decimal]], now: datetime) -> Decimal:
    """What the farm lost over the last 24 h: minus the net result (price PnL - fees + funding) of the pairs
    finished in that window, each given as (finished at, net); a live pair (finished at None) counts what it has
    booked so far, its fees above all."""
    since = now - DAY
    return -sum((net for at, net in booked if at is None or at >= since), Decimal(0))


def opens_in_last_hour(created: Iterable[datetime], now: datetime) -> int:
    """Pairs created (opens attempted, failed ones too) in the last hour."""
    since = now - HOUR
    return sum(1 for at in created if at >= since)


def total_equity(equity: Mapping[Venue, Decimal | None], venues: Iterable[Venue]) -> Decimal | None:
    """Equity over the traded `venues`, or None unless each was read: a partial sum would look like a loss."""
    total = Decimal(0)
    for venue in venues:
        value = equity.get(venue)
        if value is None:
            return None
        total += value
    return total


def weakest_venue(ratios: Mapping[Venue, Decimal | None]) -> tuple[Venue, Decimal] | None:
    """The venue with the lowest collateral ratio (None where nothing needs margin), or None."""
    known = [(ratio, venue) for venue, ratio in ratios.items() if ratio is not None]
    if not known:
        return None
    ratio, venue = min(known)
    return venue, ratio


def _usd(value: Decimal) -> str:
    return f"{value:,.2f}"


def check_open(
    config: LimitsConfig,
    now: datetime,
    exposure: Mapping[Venue, Decimal],
    adding: Decimal,
    opens_last_hour: int,
    cost: Decimal,
) -> Trip | None:
    """Whether a new pair of `adding` USD per leg may open: no venue of `exposure` (venue_exposure(): every
    traded venue) beyond its notional, the hourly count of opens and the day's cost within bounds. The first
    broken limit, or None."""
    cap = bound(config, Limit.MAX_NOTIONAL)
    for venue in exposure:
        after = exposure.get(venue, Decimal(0)) + adding
        if after > cap:
            why = (
                f"opening {_usd(adding)} more on {venue} would hold {_usd(after)} there, "
                f"above {Limit.MAX_NOTIONAL.key} = {cap}"
            )
            return Trip(Limit.MAX_NOTIONAL, after, cap, why, now, venue)
    most = bound(config, Limit.MAX_OPENS_PER_HOUR)
    if opens_last_hour >= most:
        why = f"{opens_last_hour} pairs opened in the last hour: {Limit.MAX_OPENS_PER_HOUR.key} = {most} allows no more"
        return Trip(Limit.MAX_OPENS_PER_HOUR, Decimal(opens_last_hour), most, why, now)
    return check_daily_cost(config, now, cost)


def check_daily_cost(config: LimitsConfig, now: datetime, cost: Decimal) -> Trip | None:
    """A trip when fees, funding and realized PnL over the last 24 h cost more than the bound."""
    cap = bound(config, Limit.MAX_DAILY_COST)
    if cost <= cap:
        return None
    why = f"the last 24 h cost {_usd(cost)} (fees, funding and realized PnL), above {Limit.MAX_DAILY_COST.key} = {cap}"
    return Trip(Limit.MAX_DAILY_COST, cost, cap, why, now)


def check_drawdown(config: LimitsConfig, now: datetime, high: Decimal, equity: Decimal) -> Trip | None:
    """The kill switch: equity over both venues more than the bound below its high-water mark."""
    cap = bound(config, Limit.MAX_DRAWDOWN)
    drawdown = high - equity
    if drawdown <= cap:
        return None
    why = (
        f"equity {_usd(equity)} is {_usd(drawdown)} below its high-water mark {_usd(high)}, "
        f"beyond {Limit.MAX_DRAWDOWN.key} = {cap}: every pair closes"
    )
    return Trip(Limit.MAX_DRAWDOWN, drawdown, cap, why, now)


def check_collateral(config: LimitsConfig, now: datetime, ratios: Mapping[Venue, Decimal | None]) -> Trip | None:
    """A trip when the weakest venue's collateral ratio is below the closing bound (a pair there closes)."""
    weakest = weakest_venue(ratios)
    floor = bound(config, Limit.MIN_COLLATERAL_RATIO_CLOSE)
    if weakest is None or weakest[1] >= floor:
        return None
    venue, ratio = weakest
    why = f"{venue}: collateral ratio {ratio:.2f} is below {Limit.MIN_COLLATERAL_RATIO_CLOSE.key} = {floor}"
    return Trip(Limit.MIN_COLLATERAL_RATIO_CLOSE, ratio, floor, why, now, venue)


def check_naked(config: LimitsConfig, now: datetime, naked_since: Mapping[int, datetime]) -> list[Trip]:
    """A trip per pair NAKED for longer than the bound: its leg is closed at market, whatever it costs."""
    cap = bound(config, Limit.MAX_NAKED_SECONDS)
    trips = []
    for pair_id, since in sorted(naked_since.items()):
        age = Decimal(str((now - since).total_seconds()))
        if age > cap:
            why = (
                f"pair {pair_id} has had a leg without its hedge for {age:.0f} s, beyond "
                f"{Limit.MAX_NAKED_SECONDS.key} = {cap}: closing it at market now, accepting the cost"
            )
            trips.append(Trip(Limit.MAX_NAKED_SECONDS, age, cap, why, now, pair_id=pair_id))
    return trips
