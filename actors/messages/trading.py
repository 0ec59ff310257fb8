"""Messages between the runtime, the HedgeCoordinator, the Closer and the Monitor, and their replies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from core.domain import PairState, Venue
from core.limits import Trip

# ---- to the HedgeCoordinator, Closer and Monitor -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tick:
    """Time to look at the world again."""

    now: datetime


class TradingMode(StrEnum):
    """Whether new pairs may open."""

    NORMAL = "normal"
    PAUSED = "paused"


@dataclass(frozen=True, slots=True)
class SetTradingMode:
    """Pause or resume opening (closing and monitoring go on). The coordinator alone applies it to the gate.
    `kept`: this is the operator's pause, kept in the database (actors.gate.PAUSE) before the message was sent."""

    mode: TradingMode
    reason: str
    kept: bool = False


@dataclass(frozen=True, slots=True)
class BlockOpening:
    """Hold opening back for `reason` until UnblockOpening(key) (a venue position nobody accounts for, a limit)."""

    key: str
    reason: str


@dataclass(frozen=True, slots=True)
class UnblockOpening:
    """Lift the block kept under `key`."""

    key: str


@dataclass(frozen=True, slots=True)
class OpenNow:
    """Open a pair now if the rules allow (ignores the cooldown)."""

    market: str | None = None


@dataclass(frozen=True, slots=True)
class PairOpened:
    """A pair is OPEN (its open's timing: actors.timing.Timings.open)."""

    pair_id: int


@dataclass(frozen=True, slots=True)
class PairFailed:
    """A pair did not open; its state says whether it is flat (FAILED) or not (NAKED)."""

    pair_id: int
    state: PairState
    reason: str


@dataclass(frozen=True, slots=True)
class OpenDeclined:
    """Nothing was sent: the rules did not allow a pair now."""

    reason: str


@dataclass(frozen=True, slots=True)
class ClosePair:
    """Close one pair now."""

    pair_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class CloseAll:
    """Close every open pair now."""

    reason: str


@dataclass(frozen=True, slots=True)
class LimitBreached:
    """A tripped limit demands these pairs close now (None: every live pair), whatever the retry schedule says.
    A tell from the Monitor: the kill switch and the collateral close ask again on later ticks while they last."""

    trip: Trip
    pair_ids: tuple[int, ...] | None


@dataclass(frozen=True, slots=True)
class LegVanished:
    """From the Monitor: for readings in a row, a venue has held less than these OPEN or CLOSING pairs' legs
    (liquidated, or closed outside the farmer). The Closer turns them NAKED and repairs them."""

    venue: Venue
    symbol: str
    venue_quantity: Decimal  # signed: + long
    expected: Decimal  # what the pairs hold, signed
    pair_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class UnknownPosition:
    """From the Monitor: for readings in a row, a venue has held `quantity` (signed: + long) of `symbol` beyond
    what any pair holds. The Closer applies reconcile.unknown_positions (alert: leave it; close: adopt what the
    venue holds beyond the pairs when it reads it again), so a repeated report never adopts twice."""

    venue: Venue
    symbol: str
    quantity: Decimal
    entry_price: Decimal | None


@dataclass(frozen=True, slots=True)
class CloseResult:
    """Where the pairs a close touched stand now."""

    states: dict[int, PairState]


@dataclass(frozen=True, slots=True)
class ReconcilePairs:
    """Start-up: settle every unfinished pair against the venues before anything opens."""


@dataclass(frozen=True, slots=True)
class ReconcilePositions:
    """Compare the venues' positions with the pairs now (no waiting for a second reading)."""


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What a reconciliation decided, and whether it could settle everything."""

    complete: bool
    decisions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GetStatus:
    """An actor's own summary for the status command."""


@dataclass(frozen=True, slots=True)
class StatusReply:
    """Free-form status figures of one actor (JSON-able)."""

    name: str
    data: dict[str, Any]
