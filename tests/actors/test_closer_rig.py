"""The rig the Closer's and the Monitor's own tests run on: the actor under test started on its own (a real pykka
actor), the real PersistenceWriter on a temporary SQLite database, and fake peers: scripted venue actors
(tests/actors/fakes.py) and recorders standing in for the closer and the coordinator. Nothing here is a test."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pykka

from actors.base import Directory
from actors.claims import Claims
from actors.desk import Desk, exchange_name
from actors.messages import BeginOpen, OpenBegun, PlaceOrder, TransitionPair, UpdateOrder
from actors.timing import Timings
from actors.trader import LegTrader, one_write, writes_for
from actors.writer import PersistenceWriter
from core.activity import Activity
from core.config import Settings, load_settings
from core.domain import PairState, Side, Venue
from core.ledger import OrderState
from storage.db import open_database
from storage.queries import Queries
from storage.records import LegPlan, PairPlan
from tests.actors.fakes import Behaviour, FakeVenue, Fills, VenueBook
from tests.helpers import SleeplessClock

START = datetime(2026, 3, 1, 12, tzinfo=UTC)
QTY = Decimal("0.01")
BP, HB = Venue.BACKPACK, Venue.HIBACHI
SYMBOLS = {BP: "BTC_USDC_PERP", HB: "BTC/USDT-P"}


class Script:
    """A venue's behaviour that a test can change while the actors run: `then` answers each order (default: fill
    it all at the mark); `refuse_next(n, when)` refuses the next n orders `when` says to (default: every order)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.then: Callable[[PlaceOrder], Behaviour] = lambda _order: Fills()
        self._refusals: list[tuple[Callable[[PlaceOrder], bool], Behaviour]] = []

    def refuse_next(self, n: int, behaviour: Behaviour, when: Callable[[PlaceOrder], bool] = lambda _o: True) -> None:
        """Answer the next n orders matching `when` with `behaviour` (a Refuses, or a LosesReply)."""
        with self._lock:
            self._refusals.extend([(when, behaviour)] * n)

    def __call__(self, order: PlaceOrder) -> Behaviour:
        with self._lock:
            for i, (when, behaviour) in enumerate(self._refusals):
                if when(order):
                    del self._refusals[i]
                    return behaviour
        return self.then(order)


class Recorder(pykka.ThreadingActor):
    """A fake peer (the closer, the coordinator) that keeps what it is told, and answers asks with None."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []

    def on_receive(self, message: Any) -> Any:
        """Keep the message; `Seen()` answers with everything kept so far."""
        if isinstance(message, Seen):
            return list(self.seen)
        self.seen.append(message)
        return None


@dataclass(frozen=True, slots=True)
class Seen:
    """Ask a Recorder what it was told (asked after the sender's own ask returned: the tells are in before it)."""


class Rig:
    """Writer, two scripted venues and a desk over a fresh database; `stop()` ends every actor it started."""

    def __init__(self, tmp_path: Path, overrides: dict[str, Any] | None = None) -> None:
        self.clock = SleeplessClock(START, advance_on_sleep=True)  # lookups pause between attempts
        self.settings: Settings = load_settings(overrides=overrides or {})
        self.db = open_database(f"sqlite:///{tmp_path / 'rig.db'}", self.clock)
        self.repo = Queries(self.db)
        self.directory = Directory()
        self._refs: list[pykka.ActorRef[Any]] = []
        self.activity = Activity()
        writer = PersistenceWriter.start("writer", 0, self.clock, None, db=self.db, alarm=self.activity.alarm)
        self.add("writer", writer)
        self.books = {v: VenueBook(v) for v in (BP, HB)}
        self.scripts = {v: Script() for v in (BP, HB)}
        for venue in (BP, HB):
            ref = FakeVenue.start(exchange_name(venue), self.clock, book=self.books[venue], script=self.scripts[venue])
            self.add(exchange_name(venue), ref)
        self.desk = Desk(self.directory, self.repo, self.clock, self.settings, Claims(), Timings(), self.activity)

    def add(self, name: str, ref: pykka.ActorRef[Any]) -> pykka.ActorRef[Any]:
        """Publish an actor under `name` (stopped with the rig)."""
        self.directory.set(name, ref)
        self._refs.append(ref)
        return ref

    def recorder(self, name: str) -> pykka.ActorRef[Any]:
        """A Recorder serving `name`."""
        return self.add(name, Recorder.start())

    def stop(self) -> None:
        """Stop every actor, the one under test first, and close the database."""
        for ref in reversed(self._refs):
            ref.stop()
        self.db.dispose()

    def venue(self, venue: Venue) -> pykka.ActorRef[Any]:
        """The fake venue actor of `venue`."""
        return self.directory.get(exchange_name(venue))

    # ---- pairs as the coordinator would have left them ------------------------------------------------------

    def begin(self, quantity: Decimal = QTY, market: str = "BTC") -> OpenBegun:
        """A pair OPENING with both opening orders recorded (status created) and nothing sent yet."""
        symbols = next(m for m in self.settings.trading.markets if m.name == market).symbols
        plan = PairPlan(
            market, LegPlan(BP, symbols[BP], Side.LONG), LegPlan(HB, symbols[HB], Side.SHORT), Decimal(2),
            Decimal(100) * quantity, quantity, 3600,
        )  # fmt: skip
        begun: OpenBegun = self.desk.write(BeginOpen(plan, ()))
        return begun

    def send(self, begun: OpenBegun, side: Side, *, record: bool = True) -> None:
        """Send one leg's opening order to its venue (the fake fills it), and record the reply unless the engine
        was to crash before it could."""
        i = 0 if side is Side.LONG else 1
        leg, order = begun.legs[i], begun.orders[i]
        reply = ask(self.venue(leg.venue), LegTrader.message_for(leg, order))
        if record:
            self.desk.write(one_write(writes_for(reply)))

    def refused(self, begun: OpenBegun, side: Side) -> None:
        """Record one leg's opening order as refused by its venue (nothing sent)."""
        order = begun.orders[0 if side is Side.LONG else 1]
        self.desk.write(UpdateOrder(order.venue, order.client_id, OrderState.REJECTED, error="refused (test)"))

    def open_pair(self, expires_in_s: float = 3600, market: str = "BTC") -> int:
        """A pair OPEN, both legs filled and held on their venues."""
        begun = self.begin(market=market)
        self.send(begun, Side.LONG)
        self.send(begun, Side.SHORT)
        now = self.clock.now()
        opened = {"opened_at": now, "expires_at": now + timedelta(seconds=expires_in_s), "quantity": QTY}
        self.desk.write(TransitionPair(begun.pair_id, PairState.OPENING, PairState.OPEN, "test", changes=opened))
        return begun.pair_id

    def naked_pair(self) -> int:
        """A pair NAKED after a failed open: the long filled and held, the short refused."""
        begun = self.begin()
        self.send(begun, Side.LONG)
        self.refused(begun, Side.SHORT)
        self.desk.write(TransitionPair(begun.pair_id, PairState.OPENING, PairState.NAKED, "test"))
        return begun.pair_id

    # ---- reading the outcome ------------------------------------------------------------------------------

    def state(self, pair_id: int) -> PairState:
        """The pair's state now."""
        return self.repo.get_pair(pair_id).state

    def kinds(self, pair_id: int | None = None) -> list[str]:
        """Event kinds, oldest first."""
        return [e.kind for e in reversed(self.repo.list_events(pair_id, limit=1000))]

    def flat(self) -> bool:
        """Both venues hold nothing."""
        return all(not any(book.positions.values()) for book in self.books.values())


def ask(ref: pykka.ActorRef[Any], message: Any) -> Any:
    """Ask and wait for the reply (the reply itself, never a future)."""
    return ref.ask(message, block=True, timeout=30)


def rig(tmp_path: Path, overrides: dict[str, Any] | None = None) -> Iterator[Rig]:
    """A fixture body: the rig, stopped afterwards."""
    made = Rig(tmp_path, overrides)
    try:
        yield made
    finally:
        made.stop()
