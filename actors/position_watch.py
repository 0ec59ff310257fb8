"""The Monitor's position watching: whether the venues hold what the pairs hold (core.position_check), and a
report of each lasting difference: a leg that shrank or vanished (LegVanished) or a position nobody accounts for
(UnknownPosition) to the Closer, which decides and writes. Opening is held back (BlockOpening to the coordinator)
from the reading that sees an unknown position until the reading that sees it gone."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pykka

from actors.desk import Desk
from actors.episodes import Episodes
from actors.livebook import LivePair, live_pair
from actors.messages import BlockOpening, LegVanished, Positions, UnblockOpening, UnknownPosition
from core.domain import ACTIVE_STATES, EventLevel, PairState, Venue
from core.ledger import is_unresolved
from core.position_check import Comparison, Difference, Expected, Key, compare_positions

log = logging.getLogger(__name__)

MISMATCH_TICKS = 2
_IN_MOTION = (PairState.PLANNED, PairState.OPENING, PairState.ROLLING_BACK)


def block_key(key: Key) -> str:
    """The opening block kept for an unknown position."""
    venue, symbol = key
    return f"position:{venue.value}:{symbol}"


ActiveReading = list[LivePair]  # the live pairs, each with its legs, their orders and books


def read_active(desk: Desk) -> ActiveReading:
    """The live pairs and their legs with orders, in one reading of the database."""
    pairs = desk.repo.list_pairs(ACTIVE_STATES)
    books = desk.repo.legs_with_orders(p.id for p in pairs)
    return [live_pair(p, books.get(p.id, [])) for p in pairs]


def expected_positions(desk: Desk, reading: ActiveReading | None = None) -> Expected:
    """What the pairs hold per (venue, symbol); which of those are mid-trade; which pairs hold each (from
    `reading` when given, the Monitor's book, else read now)."""
    held: dict[Key, Decimal] = {}
    moving: set[Key] = set()
    holders: dict[Key, list[int]] = {}
    claimed = desk.claims.claimed()
    for live in reading if reading is not None else read_active(desk):
        pair = live.pair
        for x in live.legs:
            key = (x.leg.venue, x.leg.symbol)
            held[key] = held.get(key, Decimal(0)) + x.leg.side.sign * x.held
            if pair.id in claimed or pair.state in _IN_MOTION or any(is_unresolved(o) for o in x.orders):
                moving.add(key)
            if pair.state in (PairState.OPEN, PairState.CLOSING) and x.held > 0:
                holders.setdefault(key, []).append(pair.id)
    return Expected(held, frozenset(moving), {k: tuple(v) for k, v in holders.items()})


class PositionWatch:
    """Compares the venues' positions with the pairs' over readings, alerts, and reports what lasted."""

    def __init__(self, desk: Desk, episodes: Episodes) -> None:
        self.desk = desk
        self.episodes = episodes
        self.policy = desk.settings.reconcile.unknown_positions
        self.counts: dict[Key, int] = {}  # readings in a row each difference has lasted
        self._blocked: set[Key] = set()  # unknown positions holding opening back
        self._unblock: set[Key] = set()  # gone again; the coordinator still to be told

    def expected(self, reading: ActiveReading | None = None) -> Expected:
        """One reading of what the pairs hold (from `reading` when given, else read now)."""
        return expected_positions(self.desk, reading)

    def check(
        self,
        positions: dict[Venue, Positions | None],
        before: Expected,
        after: Expected,
        threshold: int = MISMATCH_TICKS,
    ) -> list[str]:
        """Judge one reading of the venues (taken between the database readings `before` and `after`); report
        the differences that lasted `threshold` readings. Returns what was found."""
        items = {venue: None if report is None else report.items for venue, report in positions.items()}
        result: Comparison = compare_positions(items, before, after, self.counts, threshold)
        self.counts = result.counts
        for key in result.agreed:
            self.episodes.update(("mismatch", key), False, EventLevel.CRITICAL, "position_mismatch", "")
            if key in self._blocked:
                self._blocked.discard(key)
                self._unblock.add(key)
        found = [self._lasting(d) for d in result.lasting]
        for key in list(self._unblock):
            if self._tell("coordinator", UnblockOpening(block_key(key))):
                self._unblock.discard(key)
        return found

    def _lasting(self, diff: Difference) -> str:
        message = f"{diff.venue} {diff.symbol}: the venue holds {diff.held}, the pairs hold {diff.expected}"
        self.episodes.update(
            ("mismatch", diff.key),
            True,
            EventLevel.CRITICAL,
            "position_mismatch",
            message,
            venue=diff.venue,
            symbol=diff.symbol,
            venue_quantity=diff.held,
            expected=diff.expected,
        )
        if diff.leg_shrank:
            # Told on every reading while it lasts: the closer moves only pairs still OPEN or CLOSING, and a pair
            # it turned NAKED holds nothing the next reading counts, so the reports stop by themselves.
            if diff.holders:
                self.desk.activity.alarm(f"a leg vanished on {diff.venue}")  # the closer must be free to hear it
                self._tell("closer", LegVanished(diff.venue, diff.symbol, diff.held, diff.expected, diff.holders))
            return message
        # Re-sent every reading while it lasts (a set, not a toggle): a coordinator that restarted hears it again.
        reason = f"{message}: opening is blocked until it is resolved (reconcile.unknown_positions = {self.policy})"
        if self._tell("coordinator", BlockOpening(block_key(diff.key), reason)):
            self._blocked.add(diff.key)
            self._unblock.discard(diff.key)
        # Told on every reading while it lasts, like a vanished leg: the closer reads the venue again before it
        # adopts anything, so a report queued behind the adoption finds nothing left to adopt.
        self._tell("closer", UnknownPosition(diff.venue, diff.symbol, diff.unaccounted, diff.entry_price))
        return message

    def _tell(self, name: str, message: Any) -> bool:
        try:
            self.desk.directory.get(name).tell(message)
        except pykka.ActorDeadError:
            log.warning("%s down: %s is told again on the next reading", name, type(message).__name__)
            return False
        return True
