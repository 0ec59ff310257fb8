"""HedgeCoordinator's conclusion of an open whose legs did not both fill in full (`_conclude` and its helpers),
driven with a scripted trader and an in-memory order book: every way it ends (OPEN after a trim, FAILED after
a rollback, NAKED) and what it writes on the way."""

from __future__ import annotations

import dataclasses
import itertools
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from types import SimpleNamespace
from typing import Any

import pytest

from actors.coordinator import HedgeCoordinator, _filled, _one_fills_write, _with_fill
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
from core.domain import EventLevel, OrderPurpose, PairState, Side, Venue
from core.ledger import PositionState
from core.planning import OpenPlan, VenueView
from exchanges.base import OrderStatus
from storage.records import LegFigures, NewFill, OrderRecord, PositionRecord
from tests.helpers import SleeplessClock

START = datetime(2026, 3, 1, 12, tzinfo=UTC)
PAIR = 7
DECIDED_NS = 1_000_000  # the legs' requests leave 2 ms and 2.5 ms later (see _Open._reply)
_ORDER_IDS = itertools.count(1000)
NAKED_DATA = {"action": "opening blocked until the closer repairs it"}


def _leg(position_id: int, side: Side, venue: Venue) -> PositionRecord:
    return PositionRecord(position_id, PAIR, venue, "BTC", side, D(0), None, None, None, None, None, None, None,
                          D(2), None, "opening", START)  # fmt: skip


LONG = _leg(11, Side.LONG, Venue.BACKPACK)
SHORT = _leg(12, Side.SHORT, Venue.HIBACHI)
LEGS = {Side.LONG: LONG, Side.SHORT: SHORT}


def _order(leg: PositionRecord, purpose: OrderPurpose, status: str, filled: D, price: D = D(100)) -> OrderRecord:
    number = next(_ORDER_IDS)
    return OrderRecord(number, PAIR, leg.id, leg.venue, f"c{number}-{purpose}", None, purpose, 0, leg.side,
                       "market", purpose is not OrderPurpose.OPEN, filled or D(1), None, status, filled,
                       price if filled else None, D("0.01") if filled else None, START, START, None)  # fmt: skip


def _status(filled: D) -> str:
    return "filled" if filled == 1 else "expired"  # a market order's unfilled rest expires


class _Repo:
    """The orders of each leg, as the coordinator reads them."""

    def __init__(self) -> None:
        self.orders: dict[int, list[OrderRecord]] = {LONG.id: [], SHORT.id: []}

    def orders_for_position(self, position_id: int) -> list[OrderRecord]:
        return list(self.orders[position_id])


class _Trader:
    """Scripted sends (a quantity filled, or None for a refusal) and lookups (settle to a status, or fail)."""

    def __init__(self, repo: _Repo) -> None:
        self.repo = repo
        self.fills: dict[Side, list[D | None]] = {Side.LONG: [], Side.SHORT: []}
        self.settles: dict[Side, str | None] = {}
        self.sent: list[tuple[Side, OrderPurpose, D]] = []
        self.resolved: list[Side] = []
        self.replies_lost = 0

    def send(self, leg: PositionRecord, purpose: OrderPurpose, quantity: D) -> Any:
        self.sent.append((leg.side, purpose, quantity))
        filled = self.fills[leg.side].pop(0)
        if filled is None:
            return OrderRejected(leg.venue, "c", "E9", "reduce-only refused")
        self.repo.orders[leg.id].append(_order(leg, purpose, "filled", filled))
        if self.replies_lost:
            self.replies_lost -= 1
            return OrderInFlight(leg.venue, "c", "reply lost, lookup failed")  # filled all the same
        return OrderAccepted(leg.venue, "c", "v", OrderStatus.FILLED, quantity, filled, D(100), D("0.01"))

    def resolve(self, leg: PositionRecord) -> bool:
        self.resolved.append(leg.side)
        status = self.settles.get(leg.side)
        if status is None:
            return False
        self.repo.orders[leg.id] = [
            dataclasses.replace(o, status=status) if o.status == "in_flight" else o for o in self.repo.orders[leg.id]
        ]
        return True


class _Desk:
    """What the conclusion uses of a Desk: the repository, the retry settings, the writer and the timings."""

    def __init__(self, repo: _Repo) -> None:
        self.repo = repo
        self.timings = Timings()
        engine = SimpleNamespace(leg_retry_min_s=D(1), leg_retry_max_s=D(4))
        self.settings = SimpleNamespace(trading=SimpleNamespace(), timings=engine)
        self.writes: list[Any] = []

    def write(self, message: Any) -> None:
        self.writes.append(message)


class _Open:
    """A coordinator wired to the fakes, with each leg's first order already in the book."""

    def __init__(
        self, long_filled: D, short_filled: D, *, long_status: str | None = None, prices: tuple[D, D] = (D(100), D(100))
    ) -> None:
        self.repo = _Repo()
        self.desk = _Desk(self.repo)
        self.clock = SleeplessClock(START)
        self.coordinator = HedgeCoordinator(
            "coordinator",
            1,
            self.clock,
            None,
            desk=self.desk,
            gate=SimpleNamespace(),
            rng=random.Random(1),
            limits=SimpleNamespace(),
        )  # type: ignore[arg-type]
        self.trader = _Trader(self.repo)
        self.coordinator.trader = self.trader  # type: ignore[assignment]
        self.coordinator.failed = 3  # earlier failures: each conclusion adds one
        long_order = _order(LONG, OrderPurpose.OPEN, long_status or _status(long_filled), long_filled, prices[0])
        self.repo.orders[LONG.id].append(long_order)
        self.repo.orders[SHORT.id].append(
            _order(SHORT, OrderPurpose.OPEN, _status(short_filled), short_filled, prices[1])
        )
        self.replies: list[Any] = [
            self._reply(LONG, long_filled, 3_000_000),
            self._reply(SHORT, short_filled, 3_500_000),
        ]

    def _reply(self, leg: PositionRecord, filled: D, sent_ns: int) -> Any:
        status = OrderStatus.FILLED if filled == 1 else OrderStatus.EXPIRED
        # As the venue's actor reports it when the order is done.
        self.desk.timings.order_sent(leg.venue, "c", WireTiming(sent_ns, sent_ns + 1_000_000, sent_ns + 2_000_000, 1))
        return OrderAccepted(leg.venue, "c", "v", status, D(1), filled, D(100) if filled else None, D(0))

    def refuse(self, side: Side, code: str | None, message: str) -> None:
        leg = LEGS[side]
        self.repo.orders[leg.id] = [_order(leg, OrderPurpose.OPEN, "rejected", D(0))]
        self.replies[0 if side is Side.LONG else 1] = OrderRejected(leg.venue, "c", code, message)

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
        return self.coordinator._conclude(PAIR, plan, [LONG, SHORT], self.replies, 5, DECIDED_NS)

    def transitions(self) -> list[TransitionPair]:
        found: list[TransitionPair] = []
        for w in self.desk.writes:
            items = w.items if isinstance(w, WriteBatch) else (w,)
            found.extend(x for x in items if isinstance(x, TransitionPair))
        return found


def _naked(expected: PairState, reason: str) -> TransitionPair:
    return TransitionPair(PAIR, expected, PairState.NAKED, reason, level=EventLevel.CRITICAL, data=NAKED_DATA)


# ---- a leg whose outcome stays unknown ------------------------------------------------------------------


def test_a_leg_still_unknown_after_lookups_leaves_the_pair_naked_and_sends_nothing() -> None:
    run = _Open(D(0), D(1), long_status="in_flight")
    reason = "the outcome of a leg is unknown after lookups"
    assert run.conclude() == PairFailed(PAIR, PairState.NAKED, reason)
    assert run.trader.resolved == [Side.LONG]  # only the leg with an unresolved order is looked up
    assert run.trader.sent == []  # neither rolled back nor trimmed on a guess
    assert run.desk.writes == [_naked(PairState.OPENING, reason)]
    assert run.coordinator.failed == 4


def test_a_leg_settled_by_lookup_is_concluded_on_its_settled_orders() -> None:
    run = _Open(D(1), D(1), long_status="in_flight")
    run.trader.settles[Side.LONG] = "filled"
    assert run.conclude() == PairOpened(PAIR)
    assert run.trader.resolved == [Side.LONG]
    [opened] = run.transitions()
    assert (opened.expected, opened.to, opened.changes["quantity"]) == (PairState.OPENING, PairState.OPEN, D(1))
    assert run.coordinator.failed == 3


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
    [opened] = run.transitions()
    assert (opened.to, opened.changes["quantity"]) == (PairState.OPEN, D("0.6"))
    assert opened.reason.startswith("both legs filled: 0.6 BTC")


def test_partial_but_equal_fills_open_without_a_trim_with_books_fees_slippage_and_timing() -> None:
    run = _Open(D("0.5"), D("0.5"), prices=(D(101), D(99)))
    run.coordinator.opened = 2  # earlier opens: each adds one
    assert run.conclude() == PairOpened(PAIR)
    assert run.trader.sent == []
    assert run.coordinator.opened == 3
    assert run.coordinator.failed == 3
    fees = D("0.02")
    assert run.desk.writes == [
        WriteBatch(
            (
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
    assert run.desk.writes == [_naked(PairState.OPENING, reason)]
    assert run.coordinator.failed == 4


# ---- one leg refused: roll the other back ---------------------------------------------------------------


def test_a_refused_leg_is_named_and_the_filled_one_rolled_back() -> None:
    run = _Open(D(1), D(0))
    run.refuse(Side.SHORT, None, "insufficient margin")
    run.trader.fills[Side.LONG] = [D(1)]
    reason = "hibachi refused the short leg: insufficient margin"  # no code: no stray text before the message
    assert run.conclude() == PairFailed(PAIR, PairState.FAILED, reason)
    assert run.trader.sent == [(Side.LONG, OrderPurpose.ROLLBACK, D(1))]
    rolling, failed = run.transitions()
    assert (rolling.expected, rolling.to, rolling.reason) == (PairState.OPENING, PairState.ROLLING_BACK, reason)
    assert rolling.level is EventLevel.WARNING
    assert (failed.expected, failed.to, failed.reason) == (PairState.ROLLING_BACK, PairState.FAILED, reason)
    assert failed.changes == {"closed_at": START, "close_reason": reason}
    assert failed.data == {"rolled_back": ["backpack"]}
    assert failed.level is EventLevel.WARNING
    assert run.coordinator.failed == 4
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
    assert run.conclude().state is PairState.FAILED
    assert run.trader.sent == [(Side.LONG, OrderPurpose.ROLLBACK, D(1)), (Side.LONG, OrderPurpose.ROLLBACK, D("0.3"))]
    assert run.clock.slept == [1.0]


def test_a_rollback_whose_reply_was_lost_but_filled_is_found_flat_on_the_next_attempt() -> None:
    run = _Open(D(1), D(0))
    run.refuse(Side.SHORT, "E2", "insufficient margin")
    run.trader.fills[Side.LONG] = [D(1)]
    run.trader.replies_lost = 1
    assert run.conclude().state is PairState.FAILED  # flat after all: no second rollback, not NAKED
    assert run.trader.sent == [(Side.LONG, OrderPurpose.ROLLBACK, D(1))]
    assert run.clock.slept == [1.0]  # an unconfirmed rollback is re-read only after the backoff


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
    assert run.coordinator.failed == 4


# ---- the pure helpers -------------------------------------------------------------------------------------


def _accepted(status: OrderStatus, filled: D) -> OrderAccepted:
    return OrderAccepted(Venue.BACKPACK, "c1", "v1", status, D(1), filled, D(100), D("0.02"))


def test_only_a_reply_filled_in_full_counts_as_filled() -> None:
    assert _filled(_accepted(OrderStatus.FILLED, D(1)), D(1))
    assert not _filled(_accepted(OrderStatus.FILLED, D("0.9")), D(1))
    assert not _filled(_accepted(OrderStatus.PARTIALLY_FILLED, D(1)), D(1))
    assert not _filled(_accepted(OrderStatus.EXPIRED, D(1)), D(1))
    assert not _filled(OrderRejected(Venue.BACKPACK, "c1", None, "no"), D(1))


def _fill(client_id: str, n: int) -> NewFill:
    return NewFill(Venue.BACKPACK, client_id, f"f{n}", D(100), D("0.5"), D("0.01"), START)


def test_every_legs_fills_go_in_one_write_after_the_orders() -> None:
    a, b = UpdateOrder(Venue.BACKPACK, "c1", "filled"), UpdateOrder(Venue.HIBACHI, "c2", "filled")
    writes = [a, RecordFills((_fill("c1", 1), _fill("c1", 2))), b, RecordFills((_fill("c2", 3),))]
    assert _one_fills_write(writes) == [a, b, RecordFills((_fill("c1", 1), _fill("c1", 2), _fill("c2", 3)))]
    assert _one_fills_write([a, b]) == [a, b]  # no empty fills write
    assert _one_fills_write([]) == []


def test_an_order_reads_as_its_reply_says_once_recorded() -> None:
    order = _order(LONG, OrderPurpose.OPEN, "in_flight", D(0))
    reply = OrderAccepted(Venue.BACKPACK, order.client_id, "v77", OrderStatus.FILLED, D(1), D(1), D("101.5"), D("0.03"))
    assert _with_fill(order, reply) == dataclasses.replace(
        order, status="filled", venue_order_id="v77", filled_quantity=D(1), avg_price=D("101.5"), fee=D("0.03")
    )
