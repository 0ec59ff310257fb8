"""The Closer's handling of a venue position nobody accounts for (reported by the Monitor), per
reconcile.unknown_positions: `alert` leaves it (the Monitor has raised the alert and holds opening back), `close`
adopts it into a NAKED pair of its own, written in one transaction, which the repair then flattens."""

from __future__ import annotations

import logging
from decimal import Decimal

from actors.desk import Desk
from actors.messages import Adoption, CreatePair, FetchPositions, Positions, UnknownPosition
from actors.position_watch import expected_positions
from core.config import UnknownPositions
from core.domain import Side, Venue
from core.position_check import Difference, net_by_symbol
from storage.records import LegPlan, PairPlan

log = logging.getLogger(__name__)


class Adopter:
    """Decides what an unknown position report leads to, and writes the adoption."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.policy = desk.settings.reconcile.unknown_positions

    def take(self, seen: UnknownPosition) -> int | None:
        """Apply reconcile.unknown_positions: alert (the Monitor has raised it; nothing is traded) or close (adopt
        it into a NAKED pair of its own, which the repair flattens). Returns the adopted pair's id."""
        if self.policy is not UnknownPositions.CLOSE:
            return None
        unaccounted = self._unaccounted(seen.venue, seen.symbol)
        if unaccounted is None:
            return None
        signed, entry_price = unaccounted
        side = Side.LONG if signed > 0 else Side.SHORT
        quantity = abs(signed)
        trading = self.desk.settings.trading
        first, second = trading.venues
        other = second if seen.venue == first else first
        name, other_symbol = seen.symbol, seen.symbol  # a market nobody configured is named by its symbol
        for market in trading.markets:
            if market.symbols.get(seen.venue) == seen.symbol:
                name, other_symbol = market.name, market.symbol(other)
        mine, theirs = LegPlan(seen.venue, seen.symbol, side), LegPlan(other, other_symbol, side.opposite)
        long_leg, short_leg = (mine, theirs) if side is Side.LONG else (theirs, mine)
        notional = quantity * (entry_price or Decimal(0))
        reason = (
            f"unknown {side} {quantity} {seen.symbol} on {seen.venue} adopted: the closer flattens it "
            "(reconcile.unknown_positions = close)"
        )
        plan = PairPlan(name, long_leg, short_leg, Decimal(1), notional, quantity, 0)
        pair_id: int | None = self.desk.write(CreatePair(plan, adoption=Adoption(seen.venue, entry_price, reason))).id
        return pair_id

    def _unaccounted(self, venue: Venue, symbol: str) -> tuple[Decimal, Decimal | None] | None:
        """What the venue holds of `symbol` beyond the pairs now (signed) and its entry price; None when that is
        nothing, mid-trade, or not readable. Read afresh: the report may be older than an adoption already made."""
        expected = expected_positions(self.desk)
        key = (venue, symbol)
        if key in expected.moving:
            return None  # the Monitor tells again while it lasts
        try:
            report: Positions = self.desk.ask_venue(venue, FetchPositions())
        except Exception as exc:  # noqa: BLE001 - the Monitor tells again while it lasts
            log.warning("positions of %s not read: %s", venue, exc)
            return None
        net, entry = net_by_symbol(report.items)
        now = Difference(
            venue, symbol, expected.held.get(key, Decimal(0)), net.get(symbol, Decimal(0)), entry.get(symbol)
        )
        if now.unaccounted == 0 or now.leg_shrank:
            return None  # nothing beyond the pairs (any more): a shrunk leg of ours is the repair's to settle
        return now.unaccounted, now.entry_price
