"""The HedgeCoordinator on its own: a real pykka actor, with scripted venue actors (tests/actors/fakes.py) and the
real PersistenceWriter on a temporary SQLite database as its peers. Every way an open ends, and the gate it owns."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pykka
import pytest

from actors.base import Directory
from actors.claims import Claims
from actors.coordinator import HedgeCoordinator
from actors.desk import Desk, exchange_name
from actors.gate import PAUSE, TradingGate
from actors.limitbook import LimitBook
from actors.messages import (
    BlockOpening,
    GetStatus,
    OpenDeclined,
    OpenNow,
    PairFailed,
    PairOpened,
    PlaceOrder,
    SetLeverage,
    SetTradingMode,
    StatusReply,
    Tick,
    TradingMode,
    UnblockOpening,
)
from actors.timing import Timings
from actors.writer import PersistenceWriter
from core.config import Settings, load_settings
from core.domain import OrderPurpose, PairState, Side, Venue
from core.ledger import OrderState
from core.limits import Limit, Trip
from storage.db import open_database
from storage.queries import Queries
from tests.actors.fakes import Behaviour, FakeVenue, Fills, LosesReply, Refuses, Script, VenueBook
from tests.helpers import SleeplessClock

START = datetime(2026, 3, 1, 12, tzinfo=UTC)
ASK_S = 30.0


class HookedVenue(FakeVenue):
    """A FakeVenue that runs `on_leverage` when the coordinator sets leverage (something happening meanwhile)."""

    def __init__(self, *args: Any, on_leverage: Callable[[], None] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_leverage = on_leverage

    def handle(self, message: Any) -> Any:
        """Run the hook on SetLeverage, then answer as FakeVenue does."""
        if isinstance(message, SetLeverage) and self.on_leverage is not None:
            self.on_leverage()
        return super().handle(message)


def by_purpose(opening: Behaviour, other: Behaviour | None = None) -> Script:
    """Answer the open with `opening` and every later order (trim, rollback) with `other` (default: fill)."""
    return lambda order: (other or Fills()) if order.reduce_only else opening


class World:
    """The coordinator under test and its peers, started on their own."""

    def __init__(self, tmp_path: Path) -> None:
        self.clock = SleeplessClock(START, advance_on_sleep=True)  # backoffs and settling pauses cost no time
        self.db = open_database(f"sqlite:///{tmp_path / 'coordinator.db'}", self.clock)
        self.repo = Queries(self.db)
        self.settings: Settings = load_settings(None, {"trading": {"cooldown_min_s": 0, "cooldown_max_s": 0}})
        self.directory = Directory()
        self.desk = Desk(self.directory, self.repo, self.clock, self.settings, Claims(), Timings())
        self.gate = TradingGate()
        self.limits = LimitBook(self.settings.limits, self.desk.write, self.tell)
        self.books = {venue: VenueBook(venue) for venue in self.settings.trading.venues}
        self.refs: list[pykka.ActorRef[Any]] = []
        self.generation = 0
        writer = PersistenceWriter.start("writer", 1, self.clock, None, db=self.db, alarm=self.desk.activity.alarm)
        self._start("writer", writer)
        self.coordinator: pykka.ActorRef[Any] | None = None

    def _start(self, name: str, ref: pykka.ActorRef[Any]) -> pykka.ActorRef[Any]:
        self.directory.set(name, ref)
        self.refs.append(ref)
        return ref

    def tell(self, message: Any) -> None:
        if self.coordinator is not None and self.coordinator.is_alive():
            self.coordinator.tell(message)

    def venues(self, scripts: dict[Venue, Script] | None = None, on_leverage: Callable[[], None] | None = None) -> None:
        """Start one scripted venue actor per traded venue (default: every order fills in full)."""
        for venue, book in self.books.items():
            script = (scripts or {}).get(venue)
            ref = HookedVenue.start(exchange_name(venue), self.clock, book=book, script=script, on_leverage=on_leverage)
            self._start(exchange_name(venue), ref)

    def start_coordinator(self) -> pykka.ActorRef[Any]:
        """A new generation of the coordinator (the gate and the limits outlive it, as in the engine)."""
        self.generation += 1
        self.coordinator = self._start(
            "coordinator",
            HedgeCoordinator.start(
                "coordinator",
                self.generation,
                self.clock,
                None,
                desk=self.desk,
                gate=self.gate,
                rng=random.Random(7),
                limits=self.limits,
            ),
        )
        return self.coordinator

    def stop_coordinator(self) -> None:
        assert self.coordinator is not None
        self.coordinator.stop()
        self.coordinator = None

    def open(self) -> Any:
        assert self.coordinator is not None
        return self.coordinator.ask(OpenNow(), timeout=ASK_S)

    def status(self) -> dict[str, Any]:
        assert self.coordinator is not None
        reply = cast(StatusReply, self.coordinator.ask(GetStatus(), timeout=ASK_S))
        return dict(reply.data)

    def keep_pause(self, reason: str | None) -> None:
        """What the pause command keeps before it answers."""
        self.desk.write(PAUSE.store(None if reason is None else {"reason": reason}))

    def kinds(self) -> list[str]:
        return [e.kind for e in self.repo.list_events(None, limit=100)]

    def pair_state(self, pair_id: int) -> PairState:
        return self.repo.get_pair(pair_id).state

    def held(self, pair_id: int) -> dict[Side, Decimal]:
        return {leg.side: self.repo.held(leg.id) for leg in self.repo.positions_for_pair(pair_id)}

    def venue_held(self) -> dict[Venue, Decimal]:
        return {venue: sum(book.positions.values(), Decimal(0)) for venue, book in self.books.items()}

    def placed(self) -> list[PlaceOrder]:
        return [order for book in self.books.values() for order in book.placed]

    def close(self) -> None:
        for ref in reversed(self.refs):
            if ref.is_alive():
                ref.stop()
        self.db.dispose()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    try:
        yield w
    finally:
        w.close()


def _legs(world: World) -> tuple[Venue, Venue]:
    first, second = world.settings.trading.venues
    return first, second


# ---- how an open ends -------------------------------------------------------------------------------------------


def test_both_legs_filled_open_the_pair_with_its_books(world: World) -> None:
    world.venues()
    world.start_coordinator()
    opened = world.open()
    assert isinstance(opened, PairOpened)
    assert world.pair_state(opened.pair_id) is PairState.OPEN
    pair = world.repo.get_pair(opened.pair_id)
    assert pair.quantity is not None and pair.quantity > 0
    assert world.held(opened.pair_id) == {Side.LONG: pair.quantity, Side.SHORT: pair.quantity}
    for leg in world.repo.positions_for_pair(opened.pair_id):
        assert leg.quantity == pair.quantity and leg.entry_price is not None  # the books, in the same commit
    orders = world.repo.orders_for_pair(opened.pair_id)
    assert [o.status for o in orders] == [OrderState.FILLED, OrderState.FILLED]
    assert all(world.repo.fills_for_order(o.id) for o in orders)
    assert world.status()["opened"] == 1


def test_one_leg_refused_rolls_the_other_back_and_fails_the_pair(world: World) -> None:
    first, second = _legs(world)
    world.venues({second: by_purpose(Refuses())})
    world.start_coordinator()
    failed = world.open()
    assert isinstance(failed, PairFailed) and failed.state is PairState.FAILED
    assert "refused" in failed.reason and "insufficient margin" in failed.reason
    assert world.pair_state(failed.pair_id) is PairState.FAILED
    assert world.venue_held() == {first: 0, second: 0}  # flat on both venues
    purposes = [o.purpose for o in world.repo.orders_for_pair(failed.pair_id)]
    assert sorted(purposes) == sorted([OrderPurpose.OPEN, OrderPurpose.OPEN, OrderPurpose.ROLLBACK])
    assert world.held(failed.pair_id) == {Side.LONG: 0, Side.SHORT: 0}
    assert world.status()["failed"] == 1


def test_unequal_fills_trim_the_larger_leg_and_open_at_the_smaller(world: World) -> None:
    first, second = _legs(world)
    world.venues({second: by_purpose(Fills(quantity=Decimal("0.5")))})
    world.start_coordinator()
    opened = world.open()
    assert isinstance(opened, PairOpened)
    pair = world.repo.get_pair(opened.pair_id)
    assert pair.state is PairState.OPEN and pair.quantity == Decimal("0.5")
    assert world.held(opened.pair_id) == {Side.LONG: Decimal("0.5"), Side.SHORT: Decimal("0.5")}
    assert abs(world.venue_held()[first]) == abs(world.venue_held()[second]) == Decimal("0.5")
    repairs = [o for o in world.repo.orders_for_pair(opened.pair_id) if o.purpose is OrderPurpose.REPAIR]
    assert [(o.venue, o.status) for o in repairs] == [(first, OrderState.FILLED)]


def test_a_rollback_that_fails_leaves_the_pair_naked_and_no_new_pair_opens(world: World) -> None:
    first, second = _legs(world)
    world.venues({first: by_purpose(Fills(), Refuses("reduce only refused", "E9")), second: by_purpose(Refuses())})
    world.start_coordinator()
    alarms = world.desk.activity.alarms()
    naked = world.open()
    assert isinstance(naked, PairFailed) and naked.state is PairState.NAKED
    assert "rolling back" in naked.reason
    # The closer repairs it: a maker close holding the closer meanwhile is told to end.
    assert world.desk.activity.alarm_since(alarms) == f"pair {naked.pair_id} is NAKED"
    assert world.pair_state(naked.pair_id) is PairState.NAKED
    rollbacks = [o for o in world.repo.orders_for_pair(naked.pair_id) if o.purpose is OrderPurpose.ROLLBACK]
    assert len(rollbacks) == 3 and all(o.status is OrderState.REJECTED for o in rollbacks)  # recorded, each
    placed = len(world.placed())
    declined = world.open()
    assert isinstance(declined, OpenDeclined) and "unhedged leg" in declined.reason
    assert len(world.placed()) == placed  # nothing sent


def test_a_lost_reply_is_settled_by_lookup(world: World) -> None:
    first, _ = _legs(world)
    world.venues({first: by_purpose(LosesReply(then=Fills()))})
    world.start_coordinator()
    opened = world.open()
    assert isinstance(opened, PairOpened)
    orders = world.repo.orders_for_pair(opened.pair_id)
    assert [o.status for o in orders] == [OrderState.FILLED, OrderState.FILLED]
    lost = next(o for o in orders if o.venue is first)
    assert lost.venue_order_id is not None and world.repo.fills_for_order(lost.id)  # booked from the lookup


# ---- the gate: the coordinator's to write ----------------------------------------------------------------------


def test_a_pause_message_stops_opening_until_resumed(world: World) -> None:
    world.venues()
    ref = world.start_coordinator()
    world.keep_pause("holiday")  # the operator's pause: kept, then told
    assert ref.ask(SetTradingMode(TradingMode.PAUSED, "holiday", kept=True), timeout=ASK_S) is TradingMode.PAUSED
    assert world.gate.paused and world.gate.reason == "holiday"
    assert world.kinds().count("trading_paused") == 1  # recorded by the gate's writer, once
    declined = world.open()
    assert isinstance(declined, OpenDeclined) and "paused" in declined.reason
    assert world.repo.list_pairs() == [] and world.placed() == []
    world.keep_pause(None)
    ref.ask(SetTradingMode(TradingMode.NORMAL, "resumed by operator", kept=True), timeout=ASK_S)
    assert world.kinds().count("trading_normal") == 1
    assert isinstance(world.open(), PairOpened)


def test_a_tick_that_cannot_open_reads_nothing_kept(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # Ticks come every second for weeks: the kept pause is read only when an open is about to happen (it cost a
    # query a tick, 7% of the engine's CPU per simulated hour).
    world.venues()
    ref = world.start_coordinator()
    ref.ask(SetTradingMode(TradingMode.PAUSED, "by message"), timeout=ASK_S)
    reads: list[str] = []
    read = world.repo.get_meta
    monkeypatch.setattr(world.repo, "get_meta", lambda key: reads.append(key) or read(key))
    for _ in range(5):
        ref.ask(Tick(world.clock.now()), timeout=ASK_S)
    assert reads == [] and world.repo.list_pairs() == []


def test_a_pause_kept_but_not_yet_told_stops_the_open_a_tick_starts(world: World) -> None:
    world.venues()
    ref = world.start_coordinator()
    world.keep_pause("its message still on the way")
    ref.ask(Tick(world.clock.now()), timeout=ASK_S)
    assert world.repo.list_pairs() == [] and world.placed() == []
    assert world.gate.paused and world.gate.reason == "its message still on the way"


def test_blocks_come_and_go_by_message(world: World) -> None:
    world.venues()
    ref = world.start_coordinator()
    ref.ask(BlockOpening("position:x", "a venue position nobody accounts for"), timeout=ASK_S)
    declined = world.open()
    assert isinstance(declined, OpenDeclined) and "nobody accounts for" in declined.reason
    ref.ask(UnblockOpening("position:x"), timeout=ASK_S)
    assert world.gate.blocks == {}
    assert isinstance(world.open(), PairOpened)


def test_a_pause_kept_while_the_coordinator_was_down_holds_in_the_next_generation(world: World) -> None:
    world.venues()
    world.start_coordinator()
    world.stop_coordinator()
    world.keep_pause("paused while down")  # the command's message had nobody to reach
    world.start_coordinator()
    assert world.gate.paused and world.gate.reason == "paused while down"  # before any message is handled
    assert "trading_paused" not in world.kinds()  # taken up, not a change the operator made now
    declined = world.open()
    assert isinstance(declined, OpenDeclined) and "paused while down" in declined.reason
    world.stop_coordinator()
    world.keep_pause(None)  # resumed while down
    world.start_coordinator()
    assert not world.gate.paused
    assert isinstance(world.open(), PairOpened)


def test_a_pause_kept_during_the_leverage_round_trips_stops_that_open_before_its_orders(world: World) -> None:
    # The pause command answers without waiting for a busy coordinator: it keeps the pause first. An open that
    # has not recorded its orders by then must not go on the wire.
    world.venues(on_leverage=lambda: world.keep_pause("paused mid-open"))
    world.start_coordinator()
    declined = world.open()
    assert isinstance(declined, OpenDeclined) and "paused mid-open" in declined.reason
    assert world.repo.list_pairs() == [] and world.placed() == []
    assert world.gate.paused  # the coordinator took the kept pause into the gate


def test_a_limit_tripped_while_the_coordinator_was_down_blocks_the_next_generation(world: World) -> None:
    world.venues()
    world.start_coordinator()
    world.stop_coordinator()
    world.limits.trip(Trip(Limit.MAX_DAILY_COST, Decimal(30), Decimal(20), "costly", START))  # its message is lost
    assert world.gate.blocks == {}
    world.start_coordinator()
    assert "limit:max_daily_cost_usd" in world.gate.blocks
    world.limits.clear(Limit.MAX_DAILY_COST)  # told to the running coordinator
    world.status()  # the unblock was queued before this: handled when it answers
    assert world.gate.blocks == {}
