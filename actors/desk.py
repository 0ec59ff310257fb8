"""What the trading actors share: peers by name, the repository, claims on pairs, and leg order handling.

LegTrader is the one way an order is sent: recorded first (a crash never forgets it), sent, settled
(an unknown or unfinished outcome is looked up until final), then its result and fills are recorded.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pykka

from actors.base import Directory
from actors.messages import (
    LookupOrder,
    OrderAccepted,
    OrderInFlight,
    OrderRejected,
    OrderUnknown,
    PlaceOrder,
    RecordEvent,
    RecordFills,
    RecordOrder,
    SetMeta,
    TradingMode,
    UpdateOrder,
    WriteBatch,
)
from actors.timing import Timings
from core.clock import Clock
from core.config import LimitsConfig, Settings
from core.domain import EventLevel, OrderPurpose, PairState, Venue
from core.ids import OrderKey, external_client_id, predates_our_order
from core.ledger import OrderState, is_unresolved, leg_book
from core.limits import DAY, LegExposure, Limit, Trip, bound, daily_cost, opens_in_last_hour
from exchanges.registry import client_id_for
from storage.errors import NotFoundError
from storage.queries import Queries
from storage.records import NewFill, NewOrder, OrderRecord, PositionRecord

log = logging.getLogger(__name__)

WRITE_TIMEOUT_S = 30.0
READ_TIMEOUT_S = 30.0
# Longest a place can take: a lost reply waits out the venue's window (Backpack 5 s, Hibachi 15 s) and
# then looks the order up with retries.
ORDER_TIMEOUT_S = 90.0
# A recorded order the venue does not know is called dead only once no request of ours can still land:
# the venue's request expiry (signed window, nonce window) after it was recorded, plus this margin.
UNKNOWN_MARGIN_S = 2.0
SETTLE_LOOKUPS = 5
SETTLE_PAUSE_S = 0.2
# A recorded order whose lookup finds only an older order under its id (another database's) is called dead
# once even the slowest place of ours is over: the venue's expiry is not in such a reply, this bounds it.
NOT_OURS_WAIT_S = ORDER_TIMEOUT_S + UNKNOWN_MARGIN_S
NOT_OURS = "not_ours"
# Pairs read for the day's cost and the hour's opens, newest first: far more than the opens limit lets through.
RECENT_PAIRS = 1000

Reply = OrderAccepted | OrderRejected | OrderInFlight


def venue_created_bound(reply: OrderAccepted) -> datetime | None:
    """The latest the venue can have created the order: its creation time where the reply gives one, else
    its earliest fill (an order fills only once it exists). None when the reply shows neither."""
    times = [f.ts for f in reply.fills]
    if reply.created_at is not None:
        times.append(reply.created_at)
    return min(times, default=None)


def exchange_name(venue: Venue) -> str:
    """The directory name of a venue's ExchangeActor."""
    return f"exchange.{venue.value}"


@dataclass
class TradingGate:
    """Whether opening is allowed: the operator's mode plus automatic blocks (start-up reconciliation, a venue
    position nobody accounts for). Shared, so it survives actor restarts. Thread-safe."""

    mode: TradingMode = TradingMode.NORMAL
    reason: str = ""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._blocks: dict[str, str] = {}

    def block(self, key: str, reason: str) -> None:
        """Block opening for `reason` until unblock(key)."""
        with self._lock:
            self._blocks[key] = reason

    def unblock(self, key: str) -> None:
        """Lift one block."""
        with self._lock:
            self._blocks.pop(key, None)

    @property
    def blocks(self) -> dict[str, str]:
        """Current automatic blocks, by key."""
        with self._lock:
            return dict(self._blocks)

    def set(self, mode: TradingMode, reason: str) -> bool:
        """Change the mode; True when it changed."""
        with self._lock:
            changed = mode is not self.mode
            self.mode, self.reason = mode, reason
            return changed

    @property
    def paused(self) -> bool:
        """True when opening is paused."""
        with self._lock:
            return self.mode is TradingMode.PAUSED


HIGH_WATER_KEY = "limits.high_water"  # equity's high-water mark for max_drawdown_usd


@dataclass(frozen=True, slots=True)
class Kept:
    """A small JSON object kept under one meta key so that a restart finds it again (a pause, a tripped limit)."""

    key: str

    def load(self, repo: Queries) -> dict[str, Any] | None:
        """The kept object, or None."""
        raw = repo.get_meta(self.key)
        return None if raw is None else dict(json.loads(raw))

    def store(self, value: dict[str, Any] | None) -> SetMeta:
        """The write that keeps `value` (None: forgets it)."""
        return SetMeta(self.key, None if value is None else json.dumps(value))


@dataclass(frozen=True, slots=True)
class LedgerFigures:
    """The database's side of the limits: what each live leg holds, the last 24 h's cost, the last hour's opens."""

    exposure: tuple[LegExposure, ...]
    daily_cost: Decimal
    opens_last_hour: int


def ledger_figures(repo: Queries, now: datetime) -> LedgerFigures:
    """Read the figures the limits need from the database (live pairs, and those finished in the last day)."""
    pairs = {p.id: p for p in repo.list_pairs(limit=RECENT_PAIRS)}
    pairs.update((p.id, p) for p in repo.list_active_pairs())
    since = now - DAY
    counted = [p for p in pairs.values() if not p.state.is_terminal or (p.closed_at or now) >= since]
    books = repo.legs_with_orders(p.id for p in counted)
    legs: list[LegExposure] = []
    booked: list[tuple[datetime | None, Decimal]] = []
    for pair in counted:
        net = pair.funding or Decimal(0)
        for leg, orders in books.get(pair.id, []):
            book = leg_book(leg.side, orders)
            net += book.realized_pnl - book.fees
            if pair.state.is_terminal:
                continue
            price = leg.mark_price or book.entry_price
            held = book.held * price if price is not None else Decimal(0)
            if not held and pair.state in (PairState.PLANNED, PairState.OPENING):
                held = pair.notional  # being opened: counted before its fills are
            legs.append(LegExposure(pair.id, pair.state, leg.venue, held))
        booked.append((pair.closed_at if pair.state.is_terminal else None, net))
    opens = opens_in_last_hour((p.created_at for p in pairs.values()), now)
    return LedgerFigures(tuple(legs), daily_cost(booked, now), opens)


class LimitBook:
    """Every risk limit: its bound, its latest figure, and its trip. A trip blocks opening at once, is kept in the
    database, and lasts until cleared by name, across restarts. Shared (outlives actor restarts); thread-safe."""

    def __init__(self, config: LimitsConfig, gate: TradingGate, write: Callable[[Any], Any]) -> None:
        self.config = config
        self.gate = gate
        self._write = write
        self._lock = threading.Lock()
        self._trips: dict[Limit, Trip] = {}
        self._unsaved: set[Limit] = set()
        self._figures: dict[Limit, Decimal | None] = {}
        # Equity's high-water mark since the farmer first ran (or since the drawdown was last cleared). Kept in the
        # database: held in memory only, every restart (a crash, a container restart) would forget a slow bleed.
        self._high: Decimal | None = None
        self._high_saved = True

    def restore(self, repo: Queries) -> None:
        """Latch again the trips kept by an earlier run, and its high-water mark (before any actor runs)."""
        kept_high = Kept(HIGH_WATER_KEY).load(repo)
        if kept_high is not None:
            self._high = Decimal(str(kept_high["equity"]))
        for limit in Limit:
            kept = Kept(limit.key).load(repo)
            if kept is not None:
                self._latch(Trip.from_dict(limit, kept))
                log.warning("limit %s is tripped (%s); `resume --limit %s` clears it", limit, kept["reason"], limit)

    def _latch(self, trip: Trip) -> None:
        with self._lock:
            self._trips[trip.limit] = trip
        self.gate.block(
            f"limit:{trip.limit}",
            f"limit {trip.limit} tripped: {trip.reason} (`resume --limit {trip.limit}` clears it)",
        )

    def trip(self, trip: Trip) -> bool:
        """Latch a breach: opening blocked at once, then the trip kept and a critical event (alerted) in one
        commit. False when the limit is tripped (and kept) already: nothing new is written."""
        with self._lock:
            if trip.limit in self._trips and trip.limit not in self._unsaved:
                return False
            trip = self._trips.setdefault(trip.limit, trip)
            self._unsaved.add(trip.limit)
        self._latch(trip)
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
        self.gate.unblock(f"limit:{limit}")
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


class Claims:
    """Pairs an actor is working on right now, so two actors never trade the same pair at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owners: dict[int, str] = {}

    def claim(self, pair_id: int, owner: str) -> bool:
        """Take the pair for `owner`; False when someone else holds it."""
        with self._lock:
            if self._owners.get(pair_id, owner) != owner:
                return False
            self._owners[pair_id] = owner
            return True

    def release(self, pair_id: int) -> None:
        """Give the pair back."""
        with self._lock:
            self._owners.pop(pair_id, None)

    def release_owner(self, owner: str) -> None:
        """Drop every claim of `owner` (its actor died)."""
        with self._lock:
            for pair_id in [p for p, o in self._owners.items() if o == owner]:
                del self._owners[pair_id]

    def claimed(self) -> set[int]:
        """Pairs held by anyone."""
        with self._lock:
            return set(self._owners)


@dataclass
class Desk:
    """Shared collaborators of the trading actors (thread-safe)."""

    directory: Directory
    repo: Queries
    clock: Clock
    settings: Settings
    claims: Claims = field(default_factory=Claims)
    timings: Timings = field(default_factory=Timings)  # orders' and opens' timings; order metrics through it

    def write(self, message: Any) -> Any:
        """Ask the writer; returns (Written, or the message's own reply) once committed."""
        return self.directory.get("writer").ask(message, timeout=WRITE_TIMEOUT_S)

    def event(self, level: EventLevel, kind: str, message: str, pair_id: int | None = None, **data: Any) -> None:
        """Store (and log) an event."""
        self.write(RecordEvent(level, kind, message, pair_id, data))

    def ask_venue(self, venue: Venue, message: Any, timeout: float = READ_TIMEOUT_S) -> Any:
        """Ask a venue's actor and wait; venue errors propagate."""
        return self.directory.get(exchange_name(venue)).ask(message, timeout=timeout)

    def ask_venue_async(self, venue: Venue, message: Any) -> pykka.Future[Any]:
        """Ask a venue's actor without waiting."""
        return self.directory.get(exchange_name(venue)).ask(message, block=False)


class LegTrader:
    """Sends, settles and records the orders of pair legs."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    def next_attempt(self, position: PositionRecord, purpose: OrderPurpose) -> int:
        """Attempt number of the next order of this purpose on this leg."""
        orders = self.desk.repo.orders_for_position(position.id)
        return sum(1 for o in orders if o.purpose is purpose)

    @staticmethod
    def message_for(position: PositionRecord, order: OrderRecord) -> PlaceOrder:
        """The message that sends an order already recorded (status created) for this leg."""
        return PlaceOrder(
            order.client_id,
            position.symbol,
            order.side,
            order.quantity,
            reduce_only=order.reduce_only,
            created_at=order.created_at,
        )

    def prepare(self, position: PositionRecord, purpose: OrderPurpose, quantity: Decimal) -> PlaceOrder:
        """Record the order (status created) and return the message that sends it."""
        key = OrderKey(position.pair_id, position.side, purpose, self.next_attempt(position, purpose))
        client_id = client_id_for(position.venue, key, self.desk.repo.client_id_namespace)
        side = position.side if purpose is OrderPurpose.OPEN else position.side.opposite
        reduce_only = purpose is not OrderPurpose.OPEN
        written_from = self.desk.clock.now()  # the row's created_at is no earlier: a safe bound for the age rule
        self.desk.write(
            RecordOrder(
                NewOrder(
                    pair_id=position.pair_id,
                    position_id=position.id,
                    venue=position.venue,
                    client_id=client_id,
                    purpose=purpose,
                    attempt=key.attempt,
                    side=side,
                    order_type="market",
                    quantity=quantity,
                    reduce_only=reduce_only,
                )
            )
        )
        return PlaceOrder(client_id, position.symbol, side, quantity, reduce_only=reduce_only, created_at=written_from)

    def book_external(
        self, position: PositionRecord, purpose: OrderPurpose, quantity: Decimal, price: Decimal | None, note: str
    ) -> None:
        """Book a change the venue made without an order of ours (a liquidation, a hand trade, a position we
        adopt) as a filled `external` order, so the leg's books stay the sum of its orders."""
        attempt = self.next_attempt(position, purpose)
        client_id = external_client_id(OrderKey(position.pair_id, position.side, purpose, attempt))
        side = position.side if purpose is OrderPurpose.OPEN else position.side.opposite
        self.desk.write(
            RecordOrder(
                NewOrder(
                    pair_id=position.pair_id,
                    position_id=position.id,
                    venue=position.venue,
                    client_id=client_id,
                    purpose=purpose,
                    attempt=attempt,
                    side=side,
                    order_type="external",
                    quantity=quantity,
                    reduce_only=purpose is not OrderPurpose.OPEN,
                )
            )
        )
        self.desk.write(
            UpdateOrder(
                position.venue,
                client_id,
                OrderState.FILLED,
                filled_quantity=quantity,
                avg_price=price,
                fee=Decimal(0),
                error=note,
            )
        )

    def send(self, position: PositionRecord, purpose: OrderPurpose, quantity: Decimal) -> Reply:
        """Record, send, settle and record one order."""
        order = self.prepare(position, purpose, quantity)
        future = self.desk.ask_venue_async(position.venue, order)
        return self.finish(position, order, future)

    def finish(
        self, position: PositionRecord, order: PlaceOrder, future: pykka.Future[Any], *, record: bool = True
    ) -> Reply:
        """Wait for a sent order's reply, settle it, and record it (unless the caller records it itself, in a
        transaction of its own: `record=False`)."""
        started = time.perf_counter()
        try:
            reply: Reply = future.get(timeout=ORDER_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - a dead or wedged venue actor: the order may be out there
            reply = OrderInFlight(position.venue, order.client_id, f"no reply from the venue actor: {exc!r}")
        # A place's own reply is ours by construction (the venue answered our request). The one case where a
        # place comes back with another database's order, a lost reply's lookup, is judged by the client
        # (exchanges/ambiguity.py) with our row's time; judging every reply again here would, with a host clock
        # that ran ahead, disown our own filled orders.
        reply = self.settle(position, order.client_id, reply)
        if record:
            self.record(reply)
        self.desk.timings.order_settled(position.venue, reply, time.perf_counter() - started)
        return reply

    def settle(
        self, position: PositionRecord, client_id: str, reply: Reply, created_at: datetime | None = None
    ) -> Reply:
        """Look an unknown or unfinished order up until its outcome is final (or give up: in flight). A lookup
        that finds an order older than ours (`created_at`: our row's, read when needed) counts as not found."""
        for _ in range(SETTLE_LOOKUPS):
            if isinstance(reply, OrderRejected) or (isinstance(reply, OrderAccepted) and reply.status.is_final):
                return reply
            self.desk.clock.sleep(SETTLE_PAUSE_S)
            try:
                looked = self.desk.ask_venue(position.venue, LookupOrder(position.symbol, client_id))
            except Exception as exc:  # noqa: BLE001 - venue or actor down: still unknown
                log.warning("lookup of %s on %s failed: %s", client_id, position.venue, exc)
                continue
            if isinstance(looked, OrderUnknown) or self.not_ours(position, client_id, looked, created_at):
                if isinstance(reply, OrderInFlight):
                    continue  # the venue may not show it yet; the age rule in `resolve` decides later
                return OrderInFlight(position.venue, client_id, "accepted, then not found")
            reply = looked
        return reply

    def not_ours(
        self, position: PositionRecord, client_id: str, reply: Any, created_at: datetime | None = None
    ) -> bool:
        """True when the venue's order under our id was created before our row for it (core.ids age rule):
        another database's order, whose fills must never be booked. `created_at` is our row's; when not
        given it is read, only for an order old enough to be in question."""
        if not isinstance(reply, OrderAccepted):
            return False
        venue_created = venue_created_bound(reply)
        # No row of ours is younger than now: a venue order that does not predate now cannot predate it.
        if venue_created is None or not predates_our_order(venue_created, self.desk.clock.now()):
            return False
        if created_at is None:
            try:
                created_at = self.desk.repo.get_order(position.venue, client_id).created_at
            except NotFoundError:
                return False
        return predates_our_order(venue_created, created_at)

    def record(self, reply: Reply) -> None:
        """Write the order's outcome and its fills (one transaction)."""
        writes = self.writes_for(reply)
        self.desk.write(writes[0] if len(writes) == 1 else WriteBatch(writes))

    @staticmethod
    def writes_for(reply: Reply) -> tuple[UpdateOrder | RecordFills, ...]:
        """The writes that record an order's outcome: its totals, then its fills."""
        if isinstance(reply, OrderRejected):
            error = f"{reply.code}: {reply.message}" if reply.code else reply.message
            return (UpdateOrder(reply.venue, reply.client_id, OrderState.REJECTED, error=error),)
        if isinstance(reply, OrderInFlight):
            return (UpdateOrder(reply.venue, reply.client_id, OrderState.IN_FLIGHT, error=reply.reason),)
        update = UpdateOrder(
            reply.venue,
            reply.client_id,
            OrderState(reply.status),
            venue_order_id=reply.venue_order_id,
            filled_quantity=reply.filled_quantity,
            avg_price=reply.average_price,
            fee=reply.fee,
        )
        if not reply.fills:
            return (update,)
        fills = tuple(
            NewFill(
                reply.venue, reply.client_id, f.venue_fill_id, f.price, f.quantity, f.fee, f.ts, f.fee_asset, f.is_maker
            )
            for f in reply.fills
        )
        return update, RecordFills(fills)

    def resolve(self, position: PositionRecord) -> bool:
        """Settle every unresolved order of a leg by lookup; True when none is left unresolved."""
        done = True
        for order in self.desk.repo.orders_for_position(position.id):
            if not is_unresolved(order):
                continue
            if not self._resolve_one(position, order):
                done = False
        return done

    def _resolve_one(self, position: PositionRecord, order: OrderRecord) -> bool:
        try:
            looked = self.desk.ask_venue(position.venue, LookupOrder(position.symbol, order.client_id))
        except Exception as exc:  # noqa: BLE001 - venue down: try again on a later tick
            log.warning("lookup of %s on %s failed: %s", order.client_id, position.venue, exc)
            return False
        not_ours = self.not_ours(position, order.client_id, looked, order.created_at)
        if isinstance(looked, OrderUnknown) or not_ours:
            wait_s = looked.expiry_s + UNKNOWN_MARGIN_S if isinstance(looked, OrderUnknown) else NOT_OURS_WAIT_S
            if self.desk.clock.now() - order.created_at < timedelta(seconds=wait_s):
                return False  # a request of ours could still land: wait
            found = "; the order found under its id was created before it: not ours" if not_ours else ""
            self.desk.write(
                UpdateOrder(
                    position.venue,
                    order.client_id,
                    OrderState.REJECTED,
                    error=f"never reached the venue (status was {order.status}){found}",
                )
            )
            return True
        reply = self.settle(position, order.client_id, looked, order.created_at)
        self.record(reply)
        return isinstance(reply, OrderRejected) or (isinstance(reply, OrderAccepted) and reply.status.is_final)
