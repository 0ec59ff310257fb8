"""The end of an open: the verdict from the legs' orders (core.opening.conclude, pure) and the Concluder that
carries it out, driven with a scripted trader: every way it ends (OPEN after a trim, FAILED after a rollback,
NAKED), what it sends on the way, and the one write that records it."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from types import SimpleNamespace
from typing import Any

import pytest

from actors.concluder import Concluder
from actors.messages import (
    OrderAccepted,
    OrderInFlight,
    OrderRejected,
    PairFailed,
    PairOpened,
    RecordFills,
    TransitionPair,
    UpdateOrder,
    UpdatePosition,
    WriteBatch,
)
from actors.timing import Timings, WireTiming
from actors.trader import Outcome, Reply, applied, one_batch, outcome_of
from core import opening
from core.domain import EventLevel, OrderPurpose, PairState, Side, Venue
from core.ledger import OrderState, PositionState
from core.planning import OpenPlan, VenueView
from exchanges.base import Fill, OrderStatus
from storage.records import LegFigures, NewFill, OrderRecord, PositionRecord
from tests.helpers import SleeplessClock

START = datetime(2026, 3, 1, 12, tzinfo=UTC)
PAIR = 7
DECIDED_NS = 1_000_000  # the legs' requests leave 2 ms and 2.5 ms later (see _Open._reply)
_ORDER_IDS = itertools.count(1000)
NAKED_DATA = {"action": "opening blocked until the closer repairs it"}


def _leg(position_id: int, side: Side, venue: Venue) -> PositionRecord:
    return PositionRecord(position_id, PAIR, venue, "BTC", side, D(0), None, None, None, None, None, None, None,
                          D(2), None, PositionState.PENDING, START)  # fmt: skip


LONG = _leg(11, Side.LONG, Venue.BACKPACK)
SHORT = _leg(12, Side.SHORT, Venue.HIBACHI)
LEGS = {Side.LONG: LONG, Side.SHORT: SHORT}


def _row(leg: PositionRecord, purpose: OrderPurpose, quantity: D = D(1)) -> OrderRecord:
    """An order as recorded before it is sent (status created)."""
    number = next(_ORDER_IDS)
    return OrderRecord(number, PAIR, leg.id, leg.venue, f"c{number}-{purpose}", None, purpose, 0, leg.side,
                       "market", purpose is not OrderPurpose.OPEN, quantity, None, OrderState.CREATED, D(0), None,
                       None, START, START, None)  # fmt: skip


def _accepted(row: OrderRecord, filled: D, price: D = D(100), status: OrderStatus | None = None) -> OrderAccepted:
    status = status or (OrderStatus.FILLED if filled == row.quantity else OrderStatus.EXPIRED)
    fee = D("0.01") if filled else D(0)
    return OrderAccepted(row.venue, row.client_id, "v", status, row.quantity, filled, price if filled else None, fee)


class _Trader:
    """Scripted orders (a quantity filled, or None for a refusal) and lookups (settle to a fill, or nothing)."""

    def __init__(self) -> None:
        self.fills: dict[Side, list[D | None]] = {Side.LONG: [], Side.SHORT: []}
        self.settles: dict[Side, D] = {}  # what a lookup of the leg's unsettled order finds filled
        self.sent: list[tuple[Side, OrderPurpose, D]] = []
        self.resolved: list[Side] = []
        self.replies_lost = 0

    def place(self, leg: PositionRecord, purpose: OrderPurpose, quantity: D) -> Outcome:
        self.sent.append((leg.side, purpose, quantity))
        row = _row(leg, purpose, quantity)
        filled = self.fills[leg.side].pop(0)
        if filled is None:
            return outcome_of(row, OrderRejected(leg.venue, row.client_id, "E9", "reduce-only refused"))
        if self.replies_lost:  # filled all the same: a later lookup finds it
            self.replies_lost -= 1
            self.settles[leg.side] = filled
            return outcome_of(row, OrderInFlight(leg.venue, row.client_id, "reply lost, lookup failed"))
        return outcome_of(row, _accepted(row, filled))

    def settled(self, leg: PositionRecord, outcome: Outcome) -> Outcome:
        if outcome.final:
            return outcome
        self.resolved.append(leg.side)
        filled = self.settles.pop(leg.side, None)
        return outcome if filled is None else outcome.then(_accepted(outcome.order, filled))


class _Desk:
    """What the Concluder uses of a Desk: the retry settings, the writer and the timings."""

    def __init__(self) -> None:
        self.timings = Timings()
        self.settings = SimpleNamespace(timings=SimpleNamespace(leg_retry_min_s=D(1), leg_retry_max_s=D(4)))
        self.writes: list[Any] = []

    def write(self, message: Any) -> None:
        self.writes.append(message)


class _Open:
    """A Concluder wired to the fakes, with each leg's opening order sent and answered."""

    def __init__(self, long_filled: D, short_filled: D, *, prices: tuple[D, D] = (D(100), D(100))) -> None:
        self.desk = _Desk()
        self.clock = SleeplessClock(START)
        self.trader = _Trader()
        self.concluder = Concluder(self.desk, self.trader, self.clock)  # type: ignore[arg-type]
        self.rows = {side: _row(leg, OrderPurpose.OPEN) for side, leg in LEGS.items()}
        self.replies: dict[Side, Reply] = {
            Side.LONG: self._reply(Side.LONG, long_filled, prices[0], 3_000_000),
            Side.SHORT: self._reply(Side.SHORT, short_filled, prices[1], 3_500_000),
        }

    def _reply(self, side: Side, filled: D, price: D, sent_ns: int) -> Reply:
        row = self.rows[side]
        # As the venue's actor reports it when the order is done.
        timing = WireTiming(sent_ns, sent_ns + 1_000_000, sent_ns + 2_000_000, 1)
        self.desk.timings.order_sent(row.venue, row.client_id, timing)
        return _accepted(row, filled, price)

    def lost(self, side: Side) -> None:
        """The leg's reply is lost (in flight after the settling lookups)."""
        row = self.rows[side]
        self.replies[side] = OrderInFlight(row.venue, row.client_id, "reply lost")

    def refuse(self, side: Side, code: str | None, message: str) -> None:
        row = self.rows[side]
        self.replies[side] = OrderRejected(row.venue, row.client_id, code, message)

    def outcomes(self) -> list[Outcome]:
        return [outcome_of(self.rows[side], self.replies[side]) for side in (Side.LONG, Side.SHORT)]

    def conclude(self) -> PairOpened | PairFailed:
        plan = OpenPlan(
            "BTC",
            VenueView(Venue.BACKPACK, "BTC", D(100), D("0.1"), D("0.1"), D(1), D(10), D(1000)),
            VenueView(Venue.HIBACHI, "BTC", D(100), D("0.1"), D("0.1"), D(1), D(10), D(1000)),
            D(2),
            D(1),
            D(100),
            timedelta(hours=1),
        )
        return self.concluder.conclude(PAIR, plan, [LONG, SHORT], self.outcomes(), 5, DECIDED_NS)

    def batches(self) -> list[WriteBatch]:
        assert all(isinstance(w, WriteBatch) for w in self.desk.writes)  # every step is one transaction
        return list(self.desk.writes)

    def transitions(self) -> list[TransitionPair]:
        return [x for batch in self.batches() for x in batch.items if isinstance(x, TransitionPair)]

    def updates(self) -> list[UpdateOrder]:
        return [x for batch in self.batches() for x in batch.items if isinstance(x, UpdateOrder)]


def _state(result: PairOpened | PairFailed) -> PairState:
    return result.state if isinstance(result, PairFailed) else PairState.OPEN


def _naked(expected: PairState, reason: str) -> TransitionPair:
    return TransitionPair(PAIR, expected, PairState.NAKED, reason, level=EventLevel.CRITICAL, data=NAKED_DATA)


# ---- a leg whose outcome stays unknown ------------------------------------------------------------------


def test_a_leg_still_unknown_after_lookups_leaves_the_pair_naked_and_sends_nothing() -> None:
    run = _Open(D(0), D(1))
    run.lost(Side.LONG)
    reason = opening.UNKNOWN_LEG
    assert run.conclude() == PairFailed(PAIR, PairState.NAKED, reason)
    assert run.trader.resolved == [Side.LONG]  # only the leg with an unresolved order is looked up
    assert run.trader.sent == []  # neither rolled back nor trimmed on a guess
    [batch] = run.batches()  # the outcomes and NAKED: one transaction
    assert batch.items[-1] == _naked(PairState.OPENING, reason)
    assert [(u.client_id, u.status) for u in run.updates()] == [
        (run.rows[Side.LONG].client_id, OrderState.IN_FLIGHT),
        (run.rows[Side.SHORT].client_id, OrderState.FILLED),
    ]


def test_a_leg_settled_by_lookup_is_concluded_on_its_settled_order() -> None:
    run = _Open(D(1), D(1))
    run.lost(Side.LONG)
    run.trader.settles[Side.LONG] = D(1)
    assert run.conclude() == PairOpened(PAIR)
    assert run.trader.resolved == [Side.LONG]
    [opened] = run.transitions()
    assert (opened.expected, opened.to, opened.changes["quantity"]) == (PairState.OPENING, PairState.OPEN, D(1))
    long_id = run.rows[Side.LONG].client_id
    assert [u.status for u in run.updates() if u.client_id == long_id] == [OrderState.IN_FLIGHT, OrderState.FILLED]


# ---- both legs filled, unequally: trim the larger one ---------------------------------------------------


@pytest.mark.parametrize(("long_filled", "short_filled", "bigger"), [(D(1), D("0.6"), Side.LONG),
                                                                      (D("0.6"), D(1), Side.SHORT)])  # fmt: skip
def test_unequal_fills_trim_the_larger_leg_and_open_at_the_smaller(
    long_filled: D, short_filled: D, bigger: Side
) -> None:
    run = _Open(long_filled, short_filled)
    run.trader.fills[bigger] = [D("0.4")]
    assert run.conclude() == PairOpened(PAIR)
    assert run.trader.sent == [(bigger, OrderPurpose.REPAIR, D("0.4"))]
    [batch] = run.batches()  # the opening orders, the trim, the books and OPEN: one transaction
    [opened] = run.transitions()
    assert (opened.to, opened.changes["quantity"]) == (PairState.OPEN, D("0.6"))
    assert opened.reason.startswith("both legs filled: 0.6 BTC")
    figures = {u.position_id: u.figures.quantity for u in batch.items if isinstance(u, UpdatePosition)}
    assert figures == {LONG.id: D("0.6"), SHORT.id: D("0.6")}
    assert len(run.updates()) == 3


def test_partial_but_equal_fills_open_without_a_trim_with_books_fees_slippage_and_timing() -> None:
    run = _Open(D("0.5"), D("0.5"), prices=(D(101), D(99)))
    assert run.conclude() == PairOpened(PAIR)
    assert run.trader.sent == []
    fees = D("0.02")
    long_row, short_row = run.rows[Side.LONG], run.rows[Side.SHORT]
    assert run.desk.writes == [
        WriteBatch(
            (
                UpdateOrder(
                    Venue.BACKPACK,
                    long_row.client_id,
                    OrderState.EXPIRED,
                    venue_order_id="v",
                    filled_quantity=D("0.5"),
                    avg_price=D(101),
                    fee=D("0.01"),
                ),
                UpdateOrder(
                    Venue.HIBACHI,
                    short_row.client_id,
                    OrderState.EXPIRED,
                    venue_order_id="v",
                    filled_quantity=D("0.5"),
                    avg_price=D(99),
                    fee=D("0.01"),
                ),
                UpdatePosition(LONG.id, LegFigures(D("0.5"), D(101), fees=D("0.01"), state=PositionState.OPEN)),
                UpdatePosition(SHORT.id, LegFigures(D("0.5"), D(99), fees=D("0.01"), state=PositionState.OPEN)),
                TransitionPair(
                    PAIR,
                    PairState.OPENING,
                    PairState.OPEN,
                    "both legs filled: 0.5 BTC, leverage 2",
                    changes={
                        "opened_at": START,
                        "expires_at": START + timedelta(hours=1),
                        "quantity": D("0.5"),
                        "fees": fees,
                    },
                    data={
                        "open_ms": 5,
                        "leg_skew_us": 500,
                        "to_wire_us": 2500,  # the last leg on the wire, from the decision
                        "slippage": {"backpack": D("0.01"), "hibachi": D("0.01")},  # paid above / sold below the mark
                        "fees": fees,
                        "replies": ["OrderAccepted", "OrderAccepted"],
                    },
                ),
            )
        )
    ]


def test_a_failed_trim_leaves_the_pair_naked() -> None:
    run = _Open(D(1), D("0.6"))
    run.trader.fills[Side.LONG] = [None]
    reason = "legs filled unequally (1 vs 0.6) and trimming the larger one failed"
    assert run.conclude() == PairFailed(PAIR, PairState.NAKED, reason)
    assert run.trader.sent == [(Side.LONG, OrderPurpose.REPAIR, D("0.4"))]
    [batch] = run.batches()
    assert batch.items[-1] == _naked(PairState.OPENING, reason)
    assert [u.status for u in run.updates()] == [OrderState.FILLED, OrderState.EXPIRED, OrderState.REJECTED]


# ---- one leg refused: roll the other back ---------------------------------------------------------------


def test_a_refused_leg_is_named_and_the_filled_one_rolled_back() -> None:
    run = _Open(D(1), D(0))
    run.refuse(Side.SHORT, None, "insufficient margin")
    run.trader.fills[Side.LONG] = [D(1)]
    reason = "hibachi refused the short leg: insufficient margin"  # no code: no stray text before the message
    assert run.conclude() == PairFailed(PAIR, PairState.FAILED, reason)
    assert run.trader.sent == [(Side.LONG, OrderPurpose.ROLLBACK, D(1))]
    first, second = run.batches()  # ROLLING_BACK is committed before the rollback is sent
    rolling, failed = run.transitions()
    assert first.items[-1] == rolling and second.items[-1] == failed
    assert [type(x) for x in first.items] == [UpdateOrder, UpdateOrder, TransitionPair]  # the opening orders
    assert [type(x) for x in second.items] == [UpdateOrder, TransitionPair]  # the rollback
    assert (rolling.expected, rolling.to, rolling.reason) == (PairState.OPENING, PairState.ROLLING_BACK, reason)
    assert rolling.level is EventLevel.WARNING
    assert (failed.expected, failed.to, failed.reason) == (PairState.ROLLING_BACK, PairState.FAILED, reason)
    assert failed.changes == {"closed_at": START, "close_reason": reason}
    assert failed.data == {"rolled_back": ["backpack"]}
    assert failed.level is EventLevel.WARNING
    assert run.clock.slept == []


def test_both_refusals_are_reported_and_nothing_is_rolled_back() -> None:
    run = _Open(D(0), D(0))
    run.refuse(Side.LONG, "E1", "maintenance")
    run.refuse(Side.SHORT, "E2", "insufficient margin")
    reason = "backpack refused the long leg: E1 maintenance; hibachi refused the short leg: E2 insufficient margin"
    assert run.conclude() == PairFailed(PAIR, PairState.FAILED, reason)
    assert run.trader.sent == []
    assert run.transitions()[-1].data == {"rolled_back": []}


def test_a_leg_that_did_not_fill_without_a_refusal_says_so() -> None:
    run = _Open(D(0), D(1))
    run.trader.fills[Side.SHORT] = [D(1)]
    assert run.conclude() == PairFailed(PAIR, PairState.FAILED, "no leg filled")
    rolling, _ = run.transitions()
    assert rolling.reason == "a leg did not fill"
    assert run.trader.sent == [(Side.SHORT, OrderPurpose.ROLLBACK, D(1))]


def test_a_partial_rollback_is_retried_for_the_rest_after_a_backoff() -> None:
    run = _Open(D(1), D(0))
    run.refuse(Side.SHORT, "E2", "insufficient margin")
    run.trader.fills[Side.LONG] = [D("0.7"), D("0.3")]
    assert _state(run.conclude()) is PairState.FAILED
    assert run.trader.sent == [(Side.LONG, OrderPurpose.ROLLBACK, D(1)), (Side.LONG, OrderPurpose.ROLLBACK, D("0.3"))]
    assert run.clock.slept == [1.0]


def test_a_rollback_whose_reply_was_lost_but_filled_is_found_flat_on_the_next_attempt() -> None:
    run = _Open(D(1), D(0))
    run.refuse(Side.SHORT, "E2", "insufficient margin")
    run.trader.fills[Side.LONG] = [D(1)]
    run.trader.replies_lost = 1
    assert _state(run.conclude()) is PairState.FAILED  # flat after all: no second rollback, not NAKED
    assert run.trader.sent == [(Side.LONG, OrderPurpose.ROLLBACK, D(1))]
    assert run.clock.slept == [1.0]  # an unconfirmed rollback is looked up again only after the backoff
    assert [u.status for u in run.updates()][-2:] == [OrderState.IN_FLIGHT, OrderState.FILLED]


def test_a_rollback_that_keeps_failing_backs_off_then_leaves_the_pair_naked() -> None:
    run = _Open(D(1), D(0))
    run.refuse(Side.SHORT, "E2", "insufficient margin")
    run.trader.fills[Side.LONG] = [None, None, None]
    refusal = "hibachi refused the short leg: E2 insufficient margin"
    reason = f"rolling back the long leg on backpack failed ({refusal})"
    assert run.conclude() == PairFailed(PAIR, PairState.NAKED, reason)
    assert run.trader.sent == [(Side.LONG, OrderPurpose.ROLLBACK, D(1))] * 3
    assert run.clock.slept == [1.0, 2.0, 4.0]  # leg_retry_min_s doubling, capped at leg_retry_max_s
    assert run.transitions()[-1] == _naked(PairState.ROLLING_BACK, reason)
    assert [u.status for u in run.batches()[-1].items if isinstance(u, UpdateOrder)] == [OrderState.REJECTED] * 3


# ---- the verdict, from the orders alone -------------------------------------------------------------------


def _book(leg: PositionRecord, *fills: tuple[OrderPurpose, D, OrderState]) -> list[OrderRecord]:
    rows = []
    for purpose, filled, state in fills:
        row = _row(leg, purpose)
        rows.append(applied(row, UpdateOrder(leg.venue, row.client_id, state, filled_quantity=filled)))
    return rows


OPEN, REPAIR, ROLLBACK = OrderPurpose.OPEN, OrderPurpose.REPAIR, OrderPurpose.ROLLBACK
FILLED, EXPIRED, IN_FLIGHT = OrderState.FILLED, OrderState.EXPIRED, OrderState.IN_FLIGHT


def test_equal_legs_open_at_what_they_hold() -> None:
    books = {Side.LONG: _book(LONG, (OPEN, D(1), FILLED)), Side.SHORT: _book(SHORT, (OPEN, D(1), FILLED))}
    assert opening.conclude(books) == opening.Open(D(1))
    books = {Side.LONG: _book(LONG, (OPEN, D("0.5"), EXPIRED)), Side.SHORT: _book(SHORT, (OPEN, D("0.5"), EXPIRED))}
    assert opening.conclude(books) == opening.Open(D("0.5"))  # partial, but hedged


def test_unequal_legs_are_trimmed_once_then_naked() -> None:
    books = {Side.LONG: _book(LONG, (OPEN, D("0.9"), EXPIRED)), Side.SHORT: _book(SHORT, (OPEN, D(1), FILLED))}
    assert opening.conclude(books) == opening.Trim(Side.SHORT, D("0.1"))
    books[Side.SHORT] += _book(SHORT, (REPAIR, D("0.05"), EXPIRED))
    assert opening.conclude(books, trimmed=True) == opening.Naked(
        PairState.OPENING, "legs filled unequally (0.9 vs 0.95) and trimming the larger one failed"
    )
    books[Side.SHORT] += _book(SHORT, (REPAIR, D("0.05"), FILLED))
    assert opening.conclude(books, trimmed=True) == opening.Open(D("0.9"))


def test_a_leg_holding_nothing_rolls_the_others_back() -> None:
    books = {Side.LONG: _book(LONG, (OPEN, D(1), FILLED)), Side.SHORT: _book(SHORT, (OPEN, D(0), EXPIRED))}
    assert opening.conclude(books) == opening.RollBack((Side.LONG,))
    books = {Side.LONG: _book(LONG, (OPEN, D(0), EXPIRED)), Side.SHORT: _book(SHORT, (OPEN, D(0), EXPIRED))}
    assert opening.conclude(books) == opening.RollBack(())
    books[Side.LONG] = _book(LONG, (OPEN, D(1), FILLED), (ROLLBACK, D(1), FILLED))  # already flat
    assert opening.conclude(books) == opening.RollBack(())


def test_an_unsettled_order_leaves_the_pair_naked_before_anything_is_judged() -> None:
    books = {Side.LONG: _book(LONG, (OPEN, D(1), IN_FLIGHT)), Side.SHORT: _book(SHORT, (OPEN, D(1), FILLED))}
    assert opening.conclude(books) == opening.Naked(PairState.OPENING, opening.UNKNOWN_LEG)


# ---- an outcome and its writes, from one place ------------------------------------------------------------


def test_an_order_reads_as_its_reply_says_once_recorded() -> None:
    row = _row(LONG, OrderPurpose.OPEN)
    fill = Fill("f1", "v77", row.client_id, "BTC", Side.LONG, D("101.5"), D(1), D("0.03"), "USDC", False, START)
    reply = OrderAccepted(Venue.BACKPACK, row.client_id, "v77", OrderStatus.FILLED, D(1), D(1), D("101.5"), D("0.03"),
                          (fill,))  # fmt: skip
    outcome = outcome_of(row, reply)
    assert outcome.final and outcome.reply == reply
    assert outcome.order.status is OrderState.FILLED
    assert (outcome.order.venue_order_id, outcome.order.filled_quantity) == ("v77", D(1))
    assert (outcome.order.avg_price, outcome.order.fee) == (D("101.5"), D("0.03"))
    new_fill = NewFill(Venue.BACKPACK, row.client_id, "f1", D("101.5"), D(1), D("0.03"), START, "USDC", False)
    assert outcome.writes == (
        UpdateOrder(
            Venue.BACKPACK,
            row.client_id,
            OrderState.FILLED,
            venue_order_id="v77",
            filled_quantity=D(1),
            avg_price=D("101.5"),
            fee=D("0.03"),
        ),
        RecordFills((new_fill,)),
    )


def test_a_refusal_and_a_lost_reply_are_recorded_with_their_reason() -> None:
    row = _row(SHORT, OrderPurpose.OPEN)
    refused = outcome_of(row, OrderRejected(Venue.HIBACHI, row.client_id, "E2", "insufficient margin"))
    assert refused.final and refused.order.status is OrderState.REJECTED
    assert refused.order.error == "E2: insufficient margin" and refused.order.filled_quantity == 0
    lost = outcome_of(row, OrderInFlight(Venue.HIBACHI, row.client_id, "timeout"))
    assert not lost.final and lost.order.status is OrderState.IN_FLIGHT and lost.order.error == "timeout"
    found = lost.then(_accepted(row, D(1)))
    assert found.final and found.order.filled_quantity == D(1)
    assert [type(w) for w in found.writes] == [UpdateOrder, UpdateOrder]  # what was written on the way is kept


def _fill(client_id: str, n: int) -> NewFill:
    return NewFill(Venue.BACKPACK, client_id, f"f{n}", D(100), D("0.5"), D("0.01"), START)


def test_every_orders_fills_go_in_one_write_after_the_orders() -> None:
    a, b = UpdateOrder(Venue.BACKPACK, "c1", OrderState.FILLED), UpdateOrder(Venue.HIBACHI, "c2", OrderState.FILLED)
    writes = [a, RecordFills((_fill("c1", 1), _fill("c1", 2))), b, RecordFills((_fill("c2", 3),))]
    assert one_batch(writes) == WriteBatch((a, b, RecordFills((_fill("c1", 1), _fill("c1", 2), _fill("c2", 3)))))
    assert one_batch([a, b]) == WriteBatch((a, b))  # no empty fills write
    assert one_batch([]) == WriteBatch(())
