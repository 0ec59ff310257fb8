"""The Closer on its own: a real actor, the real writer on a temporary database, scripted venue actors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pykka
import pytest

from actors.closer import Closer
from actors.messages import (
    CloseResult,
    GetStatus,
    LegVanished,
    ReconcilePairs,
    ReconcileReport,
    Tick,
    UnknownPosition,
)
from core.domain import EventLevel, OrderPurpose, PairState, Side
from exchanges.base import FundingPayment
from tests.actors.fakes import Refuses
from tests.actors.test_closer_rig import BP, HB, QTY, SYMBOLS, Rig, ask, rig

Closers = tuple[Rig, pykka.ActorRef[Closer]]


def _start(made: Rig) -> pykka.ActorRef[Closer]:
    return made.add("closer", Closer.start("closer", 1, made.clock, None, desk=made.desk))


@pytest.fixture
def closer(tmp_path: Path) -> Iterator[Closers]:
    for made in rig(tmp_path):
        yield made, _start(made)


@pytest.fixture
def adopting(tmp_path: Path) -> Iterator[Closers]:
    for made in rig(tmp_path, {"reconcile": {"unknown_positions": "close"}}):
        yield made, _start(made)


def _tick(made: Rig, ref: pykka.ActorRef[Closer]) -> None:
    ask(ref, Tick(made.clock.now()))


def _purposes(made: Rig, pair_id: int) -> list[tuple[str, OrderPurpose, str]]:
    return [(o.venue.value, o.purpose, o.status.value) for o in made.repo.orders_for_pair(pair_id)]


# ---- closing ------------------------------------------------------------------------------------------------


def test_an_expired_pair_is_closed_on_both_legs(closer: Closers) -> None:
    made, ref = closer
    pair_id = made.open_pair(expires_in_s=60)
    _tick(made, ref)
    assert made.state(pair_id) is PairState.OPEN  # not yet due
    made.clock.advance(60)
    _tick(made, ref)
    pair = made.repo.get_pair(pair_id)
    assert pair.state is PairState.CLOSED and pair.close_reason == "duration expired"
    assert made.flat()
    closes = [
        (o.venue, o.side, o.filled_quantity)
        for o in made.repo.orders_for_pair(pair_id)
        if o.purpose is OrderPurpose.CLOSE
    ]
    assert closes == [(BP, Side.SHORT, QTY), (HB, Side.LONG, QTY)]
    assert [o.reduce_only for b in made.books.values() for o in b.placed] == [False, True, False, True]
    assert made.kinds(pair_id)[-2:] == ["pair_closing", "pair_closed"]


def test_a_refused_close_is_retried_after_its_backoff_until_flat(closer: Closers) -> None:
    made, ref = closer
    pair_id = made.open_pair(expires_in_s=0)
    made.scripts[HB].refuse_next(2, Refuses("venue busy", "BUSY"), when=lambda o: o.reduce_only)
    _tick(made, ref)
    assert made.state(pair_id) is PairState.CLOSING
    assert made.books[BP].held(SYMBOLS[BP]) == 0 and made.books[HB].held(SYMBOLS[HB]) == -QTY
    retry = made.repo.list_events(pair_id, limit=1)[0]
    assert retry.kind == "close_retry" and "venue busy" in retry.message and "retry 1 in 2s" in retry.message
    placed = len(made.books[HB].placed)
    made.clock.advance(1.9)  # leg_retry_min_s is 2: not due yet, however often the closer ticks
    _tick(made, ref)
    assert len(made.books[HB].placed) == placed
    made.clock.advance(0.1)
    _tick(made, ref)  # the second refusal: the backoff doubles
    assert len(made.books[HB].placed) == placed + 1
    assert "retry 2 in 4s" in made.repo.list_events(pair_id, limit=1)[0].message
    assert ask(ref, GetStatus()).data["retrying"] == {str(pair_id): 2}
    made.clock.advance(3.9)
    _tick(made, ref)
    assert made.state(pair_id) is PairState.CLOSING
    made.clock.advance(0.1)
    _tick(made, ref)
    assert made.state(pair_id) is PairState.CLOSED and made.flat()
    assert ask(ref, GetStatus()).data == {"closed": 1, "retrying": {}}


def test_funding_is_attributed_unless_another_pair_shared_the_market(closer: Closers) -> None:
    made, ref = closer
    first = made.open_pair(expires_in_s=30)
    made.clock.advance(10)
    made.books[BP].funding.append(FundingPayment(SYMBOLS[BP], Decimal("-0.5"), None, made.clock.now()))
    made.books[HB].funding.append(FundingPayment(SYMBOLS[HB], Decimal("0.75"), None, made.clock.now()))
    made.clock.advance(20)
    _tick(made, ref)
    assert made.repo.get_pair(first).funding == Decimal("0.25")
    # Two pairs of one market open at once: the venue's per-market funding cannot be split between them.
    second = made.open_pair(expires_in_s=30)
    made.clock.advance(1)
    third = made.open_pair(expires_in_s=30)
    made.clock.advance(30)
    _tick(made, ref)
    assert made.state(second) is PairState.CLOSED and made.state(third) is PairState.CLOSED
    assert made.repo.get_pair(second).funding is None and made.repo.get_pair(third).funding is None
    # An ETH pair open at the same time does not share BTC's funding.
    fourth = made.open_pair(expires_in_s=30)
    made.open_pair(expires_in_s=3600, market="ETH")
    made.clock.advance(10)
    made.books[BP].funding.append(FundingPayment(SYMBOLS[BP], Decimal("-0.25"), None, made.clock.now()))
    made.clock.advance(20)
    _tick(made, ref)
    assert made.repo.get_pair(fourth).funding == Decimal("-0.25")


# ---- repairing ----------------------------------------------------------------------------------------------


def test_a_naked_pair_is_repaired_to_flat(closer: Closers) -> None:
    made, ref = closer
    pair_id = made.naked_pair()
    assert made.books[BP].held(SYMBOLS[BP]) == QTY
    _tick(made, ref)
    assert made.state(pair_id) is PairState.CLOSED and made.flat()
    assert _purposes(made, pair_id)[-1] == ("backpack", OrderPurpose.REPAIR, "filled")
    closed = made.repo.list_events(pair_id, limit=1)[0]
    assert closed.kind == "pair_closed" and "repaired: both legs flat" in closed.message


def test_a_vanished_leg_turns_its_pair_naked_and_the_repair_books_it_off(closer: Closers) -> None:
    made, ref = closer
    pair_id = made.open_pair()
    with made.books[BP].lock:
        made.books[BP].positions[SYMBOLS[BP]] = Decimal(0)  # liquidated
    alarms = made.desk.activity.alarms()
    result = ask(ref, LegVanished(BP, SYMBOLS[BP], Decimal(0), QTY, (pair_id,)))
    assert result == CloseResult({pair_id: PairState.NAKED})
    # A maker phase running meanwhile (an open's, on the coordinator) ends: no new exposure while a leg is alone.
    assert made.desk.activity.alarm_since(alarms) == f"pair {pair_id} is NAKED"
    naked = made.repo.list_events(pair_id, limit=1)[0]
    assert naked.kind == "pair_naked" and naked.level is EventLevel.CRITICAL
    assert "a leg on backpack shrank or vanished (venue 0, expected 0.01)" in naked.message
    # Told again (a later reading, queued): the pair is no longer OPEN or CLOSING, nothing moves.
    assert ask(ref, LegVanished(BP, SYMBOLS[BP], Decimal(0), QTY, (pair_id,))) == CloseResult(
        {pair_id: PairState.NAKED}
    )
    _tick(made, ref)
    assert made.state(pair_id) is PairState.CLOSED and made.flat()
    assert "leg_vanished" in made.kinds(pair_id)
    external = [
        (o.venue, o.type, o.filled_quantity) for o in made.repo.orders_for_pair(pair_id) if o.type == "external"
    ]
    assert external == [(BP, "external", QTY)]


def test_a_vanished_leg_report_leaves_a_closed_pair_alone(closer: Closers) -> None:
    made, ref = closer
    pair_id = made.open_pair(expires_in_s=0)
    _tick(made, ref)
    assert made.state(pair_id) is PairState.CLOSED
    assert ask(ref, LegVanished(BP, SYMBOLS[BP], Decimal(0), QTY, (pair_id,))) == CloseResult(
        {pair_id: PairState.CLOSED}
    )
    assert "pair_naked" not in made.kinds(pair_id)


# ---- unknown positions --------------------------------------------------------------------------------------


def _hand_trade(made: Rig) -> None:
    with made.books[BP].lock:
        made.books[BP].positions["SOL_USDC_PERP"] = Decimal(-3)


def test_an_unknown_position_is_left_alone_under_the_alert_policy(closer: Closers) -> None:
    made, ref = closer
    _hand_trade(made)
    assert ask(ref, UnknownPosition(BP, "SOL_USDC_PERP", Decimal(-3), Decimal(100))) is None
    assert made.repo.list_pairs() == []
    _tick(made, ref)
    assert made.books[BP].placed == [] and made.books[BP].held("SOL_USDC_PERP") == -3


def test_an_unknown_position_is_adopted_in_one_transaction_and_flattened_under_the_close_policy(
    adopting: Closers,
) -> None:
    made, ref = adopting
    _hand_trade(made)
    pair_id = ask(ref, UnknownPosition(BP, "SOL_USDC_PERP", Decimal(-3), Decimal(100)))
    pair = made.repo.get_pair(pair_id)
    assert (pair.state, pair.market, pair.quantity, pair.notional) == (
        PairState.NAKED, "SOL_USDC_PERP", Decimal(3), Decimal(300),
    )  # fmt: skip
    assert made.kinds(pair_id) == ["pair_planned", "pair_opening", "pair_naked"]
    naked = made.repo.list_events(pair_id, limit=1)[0]
    assert naked.level is EventLevel.CRITICAL and "unknown short 3 SOL_USDC_PERP on backpack adopted" in naked.message
    orders = made.repo.orders_for_pair(pair_id)
    assert [(o.venue, o.type, o.purpose, o.side, o.filled_quantity, o.avg_price) for o in orders] == [
        (BP, "external", OrderPurpose.OPEN, Side.SHORT, Decimal(3), Decimal(100))
    ]
    _tick(made, ref)
    assert made.state(pair_id) is PairState.CLOSED and made.books[BP].held("SOL_USDC_PERP") == 0
    repair = made.repo.orders_for_pair(pair_id)[-1]
    assert (repair.type, repair.purpose, repair.side, repair.filled_quantity) == (
        "market", OrderPurpose.REPAIR, Side.LONG, Decimal(3),
    )  # fmt: skip


def test_a_report_queued_behind_the_adoption_adopts_nothing_more(adopting: Closers) -> None:
    made, ref = adopting
    _hand_trade(made)
    report = UnknownPosition(BP, "SOL_USDC_PERP", Decimal(-3), Decimal(100))
    first = ref.ask(report, block=False)  # two readings' reports, queued before the closer got to either
    second = ref.ask(report, block=False)
    assert isinstance(first.get(timeout=30), int) and second.get(timeout=30) is None
    assert len(made.repo.list_pairs()) == 1
    with made.books[BP].lock:
        made.books[BP].positions["SOL_USDC_PERP"] = Decimal(-1)  # meanwhile closed by hand, in part
    assert ask(ref, UnknownPosition(BP, "SOL_USDC_PERP", Decimal(-1), Decimal(100))) is None  # mine to repair now


def test_a_report_of_a_position_gone_since_adopts_nothing(adopting: Closers) -> None:
    made, ref = adopting
    assert ask(ref, UnknownPosition(BP, "SOL_USDC_PERP", Decimal(-3), Decimal(100))) is None
    assert made.repo.list_pairs() == []


def test_an_adopted_configured_market_is_named_and_paired_by_its_market(adopting: Closers) -> None:
    made, ref = adopting
    with made.books[HB].lock:
        made.books[HB].positions[SYMBOLS[HB]] = QTY
    pair_id = ask(ref, UnknownPosition(HB, SYMBOLS[HB], QTY, None))
    legs = made.repo.positions_for_pair(pair_id)
    assert made.repo.get_pair(pair_id).market == "BTC"
    assert [(leg.venue, leg.symbol, leg.side) for leg in legs] == [
        (HB, SYMBOLS[HB], Side.LONG),
        (BP, SYMBOLS[BP], Side.SHORT),
    ]


# ---- start-up reconciliation --------------------------------------------------------------------------------


def test_reconcile_finishes_an_open_whose_legs_both_filled_before_the_crash(closer: Closers) -> None:
    made, ref = closer
    begun = made.begin()
    made.send(begun, Side.LONG, record=False)  # sent, filled, and the engine died before recording either
    made.send(begun, Side.SHORT, record=False)
    report = ask(ref, ReconcilePairs())
    assert isinstance(report, ReconcileReport) and report.complete
    assert "both legs filled (0.01); finished opening" in report.decisions[0]
    pair = made.repo.get_pair(begun.pair_id)
    assert pair.state is PairState.OPEN and pair.expires_at == pair.opened_at + timedelta(seconds=3600)  # type: ignore[operator]
    assert made.books[BP].held(SYMBOLS[BP]) == QTY  # nothing traded


def test_reconcile_rolls_back_a_single_filled_leg_to_failed(closer: Closers) -> None:
    made, ref = closer
    begun = made.begin()
    made.send(begun, Side.LONG, record=False)  # the short never reached its venue
    report = ask(ref, ReconcilePairs())
    assert not report.complete  # the short's venue does not know it yet: a request could still land
    assert made.state(begun.pair_id) is PairState.OPENING
    made.clock.advance(5)
    report = ask(ref, ReconcilePairs())
    assert report.complete and "rolled back after a restart; flat on both venues (FAILED)" in report.decisions[0]
    assert made.state(begun.pair_id) is PairState.FAILED and made.flat()
    assert made.kinds(begun.pair_id)[-3:] == ["pair_rolling_back", "pair_failed", "reconcile"]


def test_reconcile_leaves_a_pair_naked_when_its_rollback_fails(closer: Closers) -> None:
    made, ref = closer
    begun = made.begin()
    made.send(begun, Side.LONG, record=False)
    made.clock.advance(5)
    made.scripts[BP].refuse_next(1, Refuses(), when=lambda o: o.reduce_only)
    report = ask(ref, ReconcilePairs())
    assert "rollback incomplete, NAKED until repaired" in report.decisions[0]
    assert made.state(begun.pair_id) is PairState.NAKED
    _tick(made, ref)  # the repair takes it from there
    assert made.state(begun.pair_id) is PairState.CLOSED and made.flat()
