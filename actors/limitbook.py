"""LimitBook: every risk limit's bound, latest figure and trip; and the ledger figures the limits are checked on.

A trip blocks opening by telling the coordinator (BlockOpening); the book keeps the trips itself too, so the
coordinator can bring the gate back in line with them whenever it starts (`blocks`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from actors.kept import Kept
from actors.messages import BlockOpening, RecordEvent, UnblockOpening, WriteBatch
from core.config import LimitsConfig
from core.domain import EventLevel, PairState
from core.ledger import LegBook, leg_book
from core.limits import DAY, LegExposure, Limit, Trip, bound, daily_cost, opens_in_last_hour
from storage.queries import Queries
from storage.records import PairRecord, PositionRecord

log = logging.getLogger(__name__)

HIGH_WATER_KEY = "limits.high_water"  # equity's high-water mark for max_drawdown_usd
# Pairs read for the day's cost and the hour's opens, newest first: far more than the opens limit lets through.
RECENT_PAIRS = 1000
LIMIT_PREFIX = "limit:"  # the gate's block keys of tripped limits

Tell = Callable[[BlockOpening | UnblockOpening], Any]


@dataclass(frozen=True, slots=True)
class LedgerFigures:
    """The database's side of the limits: what each live leg holds, the last 24 h's cost, the last hour's opens."""

    exposure: tuple[LegExposure, ...]
    daily_cost: Decimal
    opens_last_hour: int


Booked = Iterable[tuple[PairRecord, Iterable[tuple[PositionRecord, LegBook]]]]  # pairs, each leg with its book


def ledger_figures(repo: Queries, now: datetime) -> LedgerFigures:
    """Read the figures the limits need from the database (live pairs, and those finished in the last day)."""
    pairs = {p.id: p for p in repo.list_pairs(limit=RECENT_PAIRS)}
    pairs.update((p.id, p) for p in repo.list_active_pairs())
    since = now - DAY
    counted = {p.id for p in pairs.values() if not p.state.is_terminal or (p.closed_at or now) >= since}
    books = repo.legs_with_orders(counted)
    return ledger_figures_of(
        ((p, [(leg, leg_book(leg.side, orders)) for leg, orders in books.get(p.id, [])]) for p in pairs.values()), now
    )


def ledger_figures_of(pairs: Booked, now: datetime) -> LedgerFigures:
    """The limits' figures from pairs already read (the live ones, and those finished lately: the Monitor's book)."""
    since = now - DAY
    legs: list[LegExposure] = []
    booked: list[tuple[datetime | None, Decimal]] = []
    created: list[datetime] = []
    for pair, leg_books in pairs:
        created.append(pair.created_at)
        if pair.state.is_terminal and (pair.closed_at or now) < since:
            continue
        net = pair.funding or Decimal(0)
        for leg, book in leg_books:
            net += book.realized_pnl - book.fees
            if pair.state.is_terminal:
                continue
            price = leg.mark_price or book.entry_price
            held = book.held * price if price is not None else Decimal(0)
            if not held and pair.state in (PairState.PLANNED, PairState.OPENING):
                held = pair.notional  # being opened: counted before its fills are
            legs.append(LegExposure(pair.id, pair.state, leg.venue, held))
        booked.append((pair.closed_at if pair.state.is_terminal else None, net))
    return LedgerFigures(tuple(legs), daily_cost(booked, now), opens_in_last_hour(created, now))


def _block(trip: Trip) -> BlockOpening:
    return BlockOpening(
        f"{LIMIT_PREFIX}{trip.limit}",
        f"limit {trip.limit} tripped: {trip.reason} (`resume --limit {trip.limit}` clears it)",
    )


class LimitBook:
    """Every risk limit: its bound, its latest figure, and its trip. A trip blocks opening at once (a message to
    the coordinator, `tell`), is kept in the database, and lasts until cleared by name, across restarts. Shared
    (outlives actor restarts); thread-safe."""

    def __init__(self, config: LimitsConfig, write: Callable[[Any], Any], tell: Tell) -> None:
        self.config = config
        self._write = write
        self._tell = tell
        self._lock = threading.Lock()
        self._trips: dict[Limit, Trip] = {}
        self._unsaved: set[Limit] = set()
        self._figures: dict[Limit, Decimal | None] = {}
        # Equity's high-water mark since the farmer first ran (or since the drawdown was last cleared). Kept in the
        # database: held in memory only, every restart (a crash, a container restart) would forget a slow bleed.
        self._high: Decimal | None = None
        self._high_saved = True

    def restore(self, repo: Queries) -> None:
        """Latch again the trips kept by an earlier run, and its high-water mark (before any actor runs: the
        coordinator takes the blocks from `blocks` when it starts)."""
        kept_high = Kept(HIGH_WATER_KEY).load(repo)
        if kept_high is not None:
            self._high = Decimal(str(kept_high["equity"]))
        for limit in Limit:
            kept = Kept(limit.key).load(repo)
            if kept is not None:
                with self._lock:
                    self._trips[limit] = Trip.from_dict(limit, kept)
                log.warning("limit %s is tripped (%s); `resume --limit %s` clears it", limit, kept["reason"], limit)

    def blocks(self) -> dict[str, str]:
        """The gate's blocks the trips call for, by key (what the coordinator brings the gate in line with)."""
        with self._lock:
            trips = list(self._trips.values())
        return {b.key: b.reason for b in map(_block, trips)}

    def trip(self, trip: Trip) -> bool:
        """Latch a breach: opening blocked at once, then the trip kept and a critical event (alerted) in one
        commit. False when the limit is tripped (and kept) already: nothing new is written."""
        with self._lock:
            if trip.limit in self._trips and trip.limit not in self._unsaved:
                return False
            trip = self._trips.setdefault(trip.limit, trip)
            self._unsaved.add(trip.limit)
        self._tell(_block(trip))
        data = {"limit": trip.limit.value, "figure": trip.figure, "bound": trip.bound, "venue": trip.venue}
        event = RecordEvent(EventLevel.CRITICAL, f"{trip.limit}_tripped", trip.reason, trip.pair_id, data)
        # A failed write leaves the trip latched here and unsaved: the next breach writes it again.
        self._write(WriteBatch((Kept(trip.limit.key).store(trip.as_dict()), event)))
        with self._lock:
            self._unsaved.discard(trip.limit)
        return True

    def clear(self, limit: Limit) -> Trip | None:
        """Clear a trip (the operator's `resume --limit`): forgotten in the database first, then opening is
        unblocked. A cleared drawdown starts a new high-water mark. Returns the trip, or None if there was none."""
        trip = self.tripped(limit)
        if trip is None:
            return None
        event = RecordEvent(
            EventLevel.INFO, f"{limit}_cleared", f"limit {limit} cleared by operator (was: {trip.reason})"
        )
        writes: tuple[Any, ...] = (Kept(limit.key).store(None), event)
        if limit is Limit.MAX_DRAWDOWN:
            writes += (Kept(HIGH_WATER_KEY).store(None),)
        self._write(WriteBatch(writes))
        with self._lock:
            self._trips.pop(limit, None)
            if limit is Limit.MAX_DRAWDOWN:
                self._high = None
        self._tell(UnblockOpening(f"{LIMIT_PREFIX}{limit}"))
        return trip

    def tripped(self, limit: Limit) -> Trip | None:
        """The limit's trip, or None."""
        with self._lock:
            return self._trips.get(limit)

    def measured(self, figures: dict[Limit, Decimal | None]) -> None:
        """Keep the latest figures (for status)."""
        with self._lock:
            self._figures.update(figures)

    def high_water(self, equity: Decimal) -> Decimal:
        """Take an equity reading (both venues); returns the high-water mark it is measured against. A new mark is
        kept in the database (at most once per monitor tick)."""
        with self._lock:
            if self._high is None or equity > self._high:
                self._high, self._high_saved = equity, False
            high, saved = self._high, self._high_saved
        if not saved:
            try:
                self._write(WriteBatch((Kept(HIGH_WATER_KEY).store({"equity": str(high)}),)))
            except Exception as exc:  # noqa: BLE001 - kept in memory; the next reading writes it again
                log.warning("high-water mark %s not kept yet: %r", high, exc)
            else:
                with self._lock:
                    self._high_saved = self._high == high
        return high

    def rows(self) -> list[dict[str, Any]]:
        """Per limit: its configured value, latest figure, and trip (for status)."""
        with self._lock:
            trips, figures = dict(self._trips), dict(self._figures)
        return [
            {
                "name": limit.value,
                "limit": bound(self.config, limit),
                "figure": figures.get(limit),
                "tripped": limit in trips,
                "reason": trips[limit].reason if limit in trips else None,
                "since": trips[limit].at if limit in trips else None,
            }
            for limit in Limit
        ]
