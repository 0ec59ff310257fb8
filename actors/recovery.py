"""Settling what a crash or a dead opener left mid-way, for the Closer: the start-up reconciliation of every
unfinished pair, and the recovery of a pair found orphaned later. Orders are looked up first; then a pair with
both legs filled equally is finished (OPEN), anything else rolled back to flat (FAILED), or left NAKED for the
repair when the rollback fails. Every decision is an event row."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from actors.desk import Desk
from actors.messages import ReconcileReport, TransitionPair, UpdatePosition
from actors.trader import LegTrader
from core.clock import Clock
from core.domain import EventLevel, OrderPurpose, PairState, Side
from core.ledger import PositionState, leg_book
from storage.records import LegFigures, PairRecord, PositionRecord

UNSETTLED = (PairState.PLANNED, PairState.OPENING, PairState.ROLLING_BACK)


class Recovery:
    """Carries unfinished pairs to a state that holds nothing unhedged; `flatten` resumes a closing or naked one."""

    def __init__(
        self, owner: str, clock: Clock, desk: Desk, trader: LegTrader, flatten: Callable[[PairRecord], PairState]
    ) -> None:
        self.owner = owner  # the claims are taken in this name
        self.clock = clock
        self.desk = desk
        self.trader = trader
        self.flatten = flatten

    def reconcile(self) -> ReconcileReport:
        """Start-up: look every unfinished pair's orders up, then finish or roll back what was opening, and
        resume what was open, closing or naked. Every decision is an event row."""
        decisions: list[str] = []
        complete = True
        for pair in self.desk.repo.list_active_pairs():
            if not self.desk.claims.claim(pair.id, self.owner):
                complete = False
                continue
            try:
                decision = self._reconcile_pair(pair)
            finally:
                self.desk.claims.release(pair.id)
            if decision is None:
                complete = False
                decision = f"pair {pair.id} ({pair.state}): an order's outcome is not known yet; will retry"
            decisions.append(decision)
            self.desk.event(EventLevel.INFO if complete else EventLevel.WARNING, "reconcile", decision, pair.id)
        return ReconcileReport(complete, tuple(decisions))

    def _reconcile_pair(self, pair: PairRecord) -> str | None:
        legs = self.desk.repo.positions_for_pair(pair.id)
        if not all(self.trader.resolve(leg) for leg in legs):
            return None
        if pair.state in UNSETTLED:
            return self.settle_unfinished(pair, legs)
        if pair.state in (PairState.CLOSING, PairState.NAKED):
            state = self.flatten(pair)
            return f"pair {pair.id}: resumed {pair.state.value}, now {state.value}"
        return f"pair {pair.id}: resumed as {pair.state.value} (expires {pair.expires_at})"

    def recover(self, pair: PairRecord) -> None:
        """A pair left in PLANNED/OPENING/ROLLING_BACK by an opener that died: settle it."""
        if not self.desk.claims.claim(pair.id, self.owner):
            return
        try:
            legs = self.desk.repo.positions_for_pair(pair.id)
            if all(self.trader.resolve(leg) for leg in legs):
                decision = self.settle_unfinished(pair, legs)
                self.desk.event(EventLevel.WARNING, "recovered", decision, pair.id)
        finally:
            self.desk.claims.release(pair.id)

    def _move(self, pair: PairRecord, to: PairState, reason: str, **kw: Any) -> PairRecord:
        self.desk.write(TransitionPair(pair.id, pair.state, to, reason, **kw))
        return self.desk.repo.get_pair(pair.id)

    def settle_unfinished(self, pair: PairRecord, legs: list[PositionRecord]) -> str:
        """Orders settled: a pair with both legs filled equally is finished (OPEN); anything else is rolled
        back to flat (FAILED), or left NAKED for the repair when that fails."""
        held = {leg.side: self.desk.repo.held(leg.id) for leg in legs}
        if pair.state is PairState.PLANNED:
            pair = self._move(pair, PairState.OPENING, "orders settled after a restart")
        if pair.state is PairState.OPENING and held[Side.LONG] == held[Side.SHORT] > 0:
            return self._finish_open(pair, legs, held[Side.LONG])
        if pair.state is PairState.OPENING:
            pair = self._move(
                pair,
                PairState.ROLLING_BACK,
                f"unhedged after a restart: holding {_fmt(held)}",
                level=EventLevel.WARNING,
            )
        for leg in legs:
            if self.desk.repo.held(leg.id) > 0:
                self.trader.send(leg, OrderPurpose.ROLLBACK, self.desk.repo.held(leg.id))
        left = {leg.side: self.desk.repo.held(leg.id) for leg in legs}
        if not any(left.values()):
            reason = "rolled back after a restart" if any(held.values()) else "no leg had filled"
            self._move(pair, PairState.FAILED, reason, changes={"closed_at": self.clock.now(), "close_reason": reason})
            return f"pair {pair.id}: {reason}; flat on both venues (FAILED)"
        self._move(
            pair,
            PairState.NAKED,
            f"rollback after a restart incomplete: holding {_fmt(left)}",
            level=EventLevel.CRITICAL,
        )
        return f"pair {pair.id}: rollback incomplete, NAKED until repaired"

    def _finish_open(self, pair: PairRecord, legs: list[PositionRecord], quantity: Decimal) -> str:
        fill_times = [
            f.ts
            for leg in legs
            for o in self.desk.repo.orders_for_position(leg.id)
            if o.purpose is OrderPurpose.OPEN
            for f in self.desk.repo.fills_for_order(o.id)
        ]
        opened_at = max(fill_times) if fill_times else self.clock.now()
        fees = Decimal(0)
        for leg in legs:
            book = leg_book(leg.side, self.desk.repo.orders_for_position(leg.id))
            fees += book.fees
            self.desk.write(
                UpdatePosition(
                    leg.id, LegFigures(book.held, book.entry_price, fees=book.fees, state=PositionState.OPEN)
                )
            )
        expires_at = opened_at + timedelta(seconds=pair.duration_s)
        self._move(
            pair,
            PairState.OPEN,
            "both legs had filled before the restart",
            changes={"opened_at": opened_at, "expires_at": expires_at, "quantity": quantity, "fees": fees},
        )
        return f"pair {pair.id}: both legs filled ({quantity}); finished opening, OPEN until {expires_at}"


def _fmt(held: dict[Side, Decimal]) -> str:
    return ", ".join(f"{side.value} {qty}" for side, qty in held.items())
