"""Concluder: the end of an open, from its legs' outcomes to the one transaction that records it.

The verdict comes from the orders alone (core.opening.conclude); this carries it out (a trim, a rollback)
and commits the outcomes together with what follows from them (the legs' books and OPEN; FAILED; NAKED),
on one path (`_commit`). Orders sent on the way (trim, rollback) are recorded before they are sent.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from actors.desk import Desk
from actors.messages import (
    OrderAccepted,
    OrderRejected,
    PairFailed,
    PairOpened,
    TransitionPair,
    UpdatePosition,
    WriteBatch,
)
from actors.trader import LegTrader, Outcome, Reply, one_batch
from core import opening
from core.clock import Clock
from core.domain import EventLevel, OrderPurpose, PairState, Side, Venue
from core.ledger import PositionState, backoff_s, leg_book, net_quantity
from core.planning import OpenPlan
from storage.records import LegFigures, OrderRecord, PositionRecord

ROLLBACK_ATTEMPTS = 3
NAKED_ACTION = {"action": "opening blocked until the closer repairs it"}

Books = dict[Side, list[OrderRecord]]


class Concluder:
    """Concludes opens: OPEN (after a trim if need be), FAILED after a rollback, or NAKED."""

    def __init__(self, desk: Desk, trader: LegTrader, clock: Clock) -> None:
        self.desk = desk
        self.trader = trader
        self.clock = clock

    def conclude(
        self,
        pair_id: int,
        plan: OpenPlan,
        legs: list[PositionRecord],
        outcomes: list[Outcome],
        elapsed_ms: int,
        decided_ns: int,
    ) -> PairOpened | PairFailed:
        """Carry out the verdict on the legs' outcomes (core.opening.conclude): open, trim then open, roll back,
        or leave the pair NAKED. The outcomes are recorded together with what follows from them."""
        replies = [o.reply for o in outcomes]
        refusals = "; ".join(
            f"{r.venue} refused the {leg.side} leg: {r.code + ' ' if r.code else ''}{r.message}"
            for leg, r in zip(legs, replies, strict=True)
            if isinstance(r, OrderRejected)
        )
        settled = [self.trader.settled(leg, o) for leg, o in zip(legs, outcomes, strict=True)]
        books: Books = {leg.side: [o.order] for leg, o in zip(legs, settled, strict=True)}
        writes: list[Any] = [w for o in settled for w in o.writes]
        return self._carry_out(pair_id, plan, legs, replies, books, writes, refusals, elapsed_ms, decided_ns)

    def conclude_recorded(
        self, pair_id: int, plan: OpenPlan, legs: list[PositionRecord], replies: list[Reply], elapsed_ms: int,
        decided_ns: int, why: str,
    ) -> PairOpened | PairFailed:  # fmt: skip
        """The verdict on an open whose orders are all committed already (a maker phase and its taker rest):
        the legs' books are read from the database. `why` explains a rollback."""
        books: Books = {leg.side: list(self.desk.repo.orders_for_position(leg.id)) for leg in legs}
        return self._carry_out(pair_id, plan, legs, replies, books, [], why, elapsed_ms, decided_ns)

    def _carry_out(
        self, pair_id: int, plan: OpenPlan, legs: list[PositionRecord], replies: list[Reply], books: Books,
        writes: list[Any], refusals: str, elapsed_ms: int, decided_ns: int,
    ) -> PairOpened | PairFailed:  # fmt: skip
        by_side = {leg.side: leg for leg in legs}
        verdict = opening.conclude(books)
        if isinstance(verdict, opening.Trim):
            trim = self.trader.place(by_side[verdict.side], OrderPurpose.REPAIR, verdict.quantity)
            books[verdict.side].append(trim.order)
            writes.extend(trim.writes)
            verdict = opening.conclude(books, trimmed=True)
        match verdict:
            case opening.Open(quantity=quantity):
                return self._opened(pair_id, plan, legs, replies, quantity, elapsed_ms, decided_ns, books, writes)
            case opening.Naked(expected=expected, reason=reason):
                return self._naked(pair_id, expected, reason, writes)
            case opening.RollBack(sides=sides):
                return self._roll_back(pair_id, [by_side[s] for s in sides], books, writes, refusals)
        raise AssertionError(f"unexpected verdict {verdict!r}")

    def _commit(self, writes: list[Any], *then: Any) -> None:
        """One transaction: the orders' outcomes (their fills in one write), then what follows from them."""
        self.desk.write(WriteBatch((*one_batch(writes).items, *then)))

    def _roll_back(
        self, pair_id: int, lone: list[PositionRecord], books: Books, writes: list[Any], refusals: str
    ) -> PairFailed:
        """Flatten the legs that filled without their hedge: FAILED when all are flat, else NAKED."""
        reason = refusals or "a leg did not fill"
        rolling = TransitionPair(pair_id, PairState.OPENING, PairState.ROLLING_BACK, reason, level=EventLevel.WARNING)
        self._commit(writes, rolling)  # the pair says ROLLING_BACK before any rollback order is sent
        writes = []
        for leg in lone:
            if not self._flatten(leg, books[leg.side], writes):
                reason = f"rolling back the {leg.side} leg on {leg.venue} failed ({refusals})"
                return self._naked(pair_id, PairState.ROLLING_BACK, reason, writes)
        reason = refusals or "no leg filled"
        failed = TransitionPair(
            pair_id,
            PairState.ROLLING_BACK,
            PairState.FAILED,
            reason,
            changes={"closed_at": self.clock.now(), "close_reason": reason},
            level=EventLevel.WARNING,
            data={"rolled_back": [leg.venue.value for leg in lone]},
        )
        self._commit(writes, failed)
        return PairFailed(pair_id, PairState.FAILED, reason)

    def _flatten(self, leg: PositionRecord, orders: list[OrderRecord], writes: list[Any]) -> bool:
        """Send reduce-only orders for what the leg holds (by `orders`, which grows with them) until it is flat,
        with a backoff between attempts; an unconfirmed one is looked up again after the backoff."""
        for attempt in range(ROLLBACK_ATTEMPTS):
            held = net_quantity(orders)
            if held == 0:
                return True
            outcome = self.trader.place(leg, OrderPurpose.ROLLBACK, held)
            orders.append(outcome.order)
            if isinstance(outcome.reply, OrderAccepted) and net_quantity(orders) == 0:
                writes.extend(outcome.writes)
                return True
            timings = self.desk.settings.timings
            self.clock.sleep(float(backoff_s(attempt, timings.leg_retry_min_s, timings.leg_retry_max_s)))
            outcome = self.trader.settled(leg, outcome)
            orders[-1] = outcome.order
            writes.extend(outcome.writes)
        return net_quantity(orders) == 0

    def _naked(self, pair_id: int, expected: PairState, reason: str, writes: list[Any]) -> PairFailed:
        naked = TransitionPair(
            pair_id, expected, PairState.NAKED, reason, level=EventLevel.CRITICAL, data=dict(NAKED_ACTION)
        )
        self._commit(writes, naked)
        return PairFailed(pair_id, PairState.NAKED, reason)

    def _opened(
        self,
        pair_id: int,
        plan: OpenPlan,
        legs: list[PositionRecord],
        replies: list[Reply],
        quantity: Decimal,
        elapsed_ms: int,
        decided_ns: int,
        books: Books,
        writes: list[Any],
    ) -> PairOpened:
        now = self.clock.now()
        sent = self.desk.timings.open_timing(decided_ns, order_keys(replies))
        marks = {plan.long.venue: plan.long.mark, plan.short.venue: plan.short.mark}
        slippage: dict[str, Decimal] = {}
        fees = Decimal(0)
        updates: list[UpdatePosition] = []
        for leg in legs:
            book = leg_book(leg.side, books[leg.side])
            fees += book.fees
            if book.entry_price is not None:
                # Positive: paid more than the mark (long) or sold below it (short).
                slippage[leg.venue.value] = leg.side.sign * (book.entry_price - marks[leg.venue]) / marks[leg.venue]
            updates.append(
                UpdatePosition(
                    leg.id, LegFigures(book.held, book.entry_price, fees=book.fees, state=PositionState.OPEN)
                )
            )
        opened = TransitionPair(
            pair_id,
            PairState.OPENING,
            PairState.OPEN,
            f"both legs filled: {quantity} {plan.market}, leverage {plan.leverage}",
            changes={"opened_at": now, "expires_at": now + plan.duration, "quantity": quantity, "fees": fees},
            data={
                "open_ms": elapsed_ms,
                # How long one leg was on the wire without the other, and what the engine added before
                # sending (microseconds, real time).
                "leg_skew_us": _us(sent.leg_skew_ns),
                "to_wire_us": _us(sent.to_wire_ns),
                "slippage": slippage,
                "fees": fees,
                "replies": [type(r).__name__ for r in replies],
            },
        )
        self._commit(writes, *updates, opened)  # the outcomes, the books and OPEN commit together
        return PairOpened(pair_id)


def order_keys(replies: list[Reply]) -> list[tuple[Venue, str]]:
    """The legs' orders (venue, client id), by which their timings are found."""
    return [(r.venue, r.client_id) for r in replies]


def _us(ns: int | None) -> int | None:
    return None if ns is None else ns // 1000
