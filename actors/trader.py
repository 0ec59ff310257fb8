"""LegTrader: one order of a pair's leg, from intent to outcome.

An order is recorded first (status created: a crash never forgets it), sent, and settled (an unknown or
unfinished outcome is looked up until final). Its end is an `Outcome`: the venue's final word, the order's row
as it reads once that is recorded, and the writes that record it, all derived from the reply by `outcome_of`.
The caller commits those writes: at once (`send`, `finish`: the closer), or together with what follows from
them (the coordinator's open, whose results, books and transition are one transaction).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pykka

from actors.messages import (
    CancelOrder,
    LookupOrder,
    OrderAccepted,
    OrderInFlight,
    OrderRejected,
    OrderUnknown,
    PlaceOrder,
    RecordFills,
    RecordOrder,
    UpdateOrder,
    WriteBatch,
)
from core.domain import OrderPurpose
from core.ids import OrderKey, external_client_id, predates_our_order
from core.ledger import OrderState, is_unresolved
from exchanges.base import OrderType, TimeInForce
from exchanges.registry import client_id_for, spec_of
from storage.errors import NotFoundError
from storage.records import NewFill, NewOrder, OrderRecord, PositionRecord

if TYPE_CHECKING:
    from actors.desk import Desk

log = logging.getLogger(__name__)

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

Reply = OrderAccepted | OrderRejected | OrderInFlight
OrderWrite = UpdateOrder | RecordFills


def venue_created_bound(reply: OrderAccepted) -> datetime | None:
    """The latest the venue can have created the order: its creation time where the reply gives one, else
    its earliest fill (an order fills only once it exists). None when the reply shows neither."""
    times = [f.ts for f in reply.fills]
    if reply.created_at is not None:
        times.append(reply.created_at)
    return min(times, default=None)


def is_final(reply: Reply) -> bool:
    """True when the reply is the order's last word: refused, or accepted and done."""
    return isinstance(reply, OrderRejected) or (isinstance(reply, OrderAccepted) and reply.status.is_final)


def writes_for(reply: Reply) -> tuple[OrderWrite, ...]:
    """The writes that record an order's outcome: its totals (always first), then its fills."""
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


def applied(order: OrderRecord, update: UpdateOrder) -> OrderRecord:
    """The row as it reads once `update` is committed (the writer keeps a stored value where a field is None)."""
    changes: dict[str, Any] = {"status": OrderState(update.status)}
    for name in ("venue_order_id", "filled_quantity", "avg_price", "fee", "error", "quantity"):
        value = getattr(update, name)
        if value is not None:
            changes[name] = value
    return dataclasses.replace(order, **changes)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One order's end as far as it is known: the last reply, the order's row once that is recorded, and the
    writes that record it (everything since the row was read, in order)."""

    reply: Reply
    order: OrderRecord
    writes: tuple[OrderWrite, ...]

    @property
    def final(self) -> bool:
        """True when the outcome is settled for good (refused, or accepted and done)."""
        return not is_unresolved(self.order)

    def then(self, reply: Reply) -> Outcome:
        """This outcome followed by a later word about the same order (a lookup)."""
        return outcome_of(self.order, reply, self.writes)


def outcome_of(order: OrderRecord, reply: Reply, earlier: tuple[OrderWrite, ...] = ()) -> Outcome:
    """The outcome `reply` makes of `order`: its writes, and the row those writes leave."""
    writes = writes_for(reply)
    update = writes[0]
    assert isinstance(update, UpdateOrder)
    return Outcome(reply, applied(order, update), earlier + writes)


def one_batch(writes: list[Any]) -> WriteBatch:
    """The writes as one batch, every order's fills in one RecordFills after the orders (stored in three
    statements, not three per order)."""
    fills = tuple(f for w in writes if isinstance(w, RecordFills) for f in w.fills)
    others = [w for w in writes if not isinstance(w, RecordFills)]
    return WriteBatch((*others, RecordFills(fills)) if fills else tuple(others))


def one_write(writes: tuple[OrderWrite, ...]) -> Any:
    """What records these writes in one transaction: the write itself when it is alone."""
    return writes[0] if len(writes) == 1 else one_batch(list(writes))


class LegTrader:
    """Records, sends and settles the orders of pair legs; one instance per actor."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    def next_attempt(self, position: PositionRecord, purpose: OrderPurpose) -> int:
        """Attempt number of the next order of this purpose on this leg."""
        orders = self.desk.repo.orders_for_position(position.id)
        return sum(1 for o in orders if o.purpose is purpose)

    @staticmethod
    def message_for(position: PositionRecord, order: OrderRecord) -> PlaceOrder:
        """The message that sends an order already recorded (status created) for this leg."""
        resting = order.type == OrderType.LIMIT.value
        return PlaceOrder(
            order.client_id,
            position.symbol,
            order.side,
            order.quantity,
            OrderType.LIMIT if resting else OrderType.MARKET,
            order.price if resting else None,
            TimeInForce.POST_ONLY if resting else TimeInForce.GTC,
            reduce_only=order.reduce_only,
            created_at=order.created_at,
        )

    def prepare_maker(
        self, position: PositionRecord, purpose: OrderPurpose, quantity: Decimal, price: Decimal
    ) -> tuple[OrderRecord, PlaceOrder]:
        """Record a post-only limit order (status created, committed) and return its row and the message that
        sends it: a resting maker order is in the database before it can rest on the venue."""
        new = self._new_order(position, purpose, quantity, "market")
        reduce_only = new.reduce_only and spec_of(position.venue).post_only_reduce_only
        new = dataclasses.replace(new, order_type=OrderType.LIMIT.value, price=price, reduce_only=reduce_only)
        self.desk.write(RecordOrder(new))
        row = self.desk.repo.get_order(position.venue, new.client_id)
        return row, self.message_for(position, row)

    def _new_order(self, position: PositionRecord, purpose: OrderPurpose, quantity: Decimal, kind: str) -> NewOrder:
        key = OrderKey(position.pair_id, position.side, purpose, self.next_attempt(position, purpose))
        if kind == "market":
            client_id = client_id_for(position.venue, key, self.desk.repo.client_id_namespace)
        else:
            client_id = external_client_id(key)
        return NewOrder(
            pair_id=position.pair_id,
            position_id=position.id,
            venue=position.venue,
            client_id=client_id,
            purpose=purpose,
            attempt=key.attempt,
            side=position.side if purpose is OrderPurpose.OPEN else position.side.opposite,
            order_type=kind,
            quantity=quantity,
            reduce_only=purpose is not OrderPurpose.OPEN,
        )

    def prepare(self, position: PositionRecord, purpose: OrderPurpose, quantity: Decimal) -> PlaceOrder:
        """Record the order (status created, committed) and return the message that sends it."""
        new = self._new_order(position, purpose, quantity, "market")
        written_from = self.desk.clock.now()  # the row's created_at is no earlier: a safe bound for the age rule
        self.desk.write(RecordOrder(new))
        return PlaceOrder(
            new.client_id, position.symbol, new.side, quantity, reduce_only=new.reduce_only, created_at=written_from
        )

    def place(self, position: PositionRecord, purpose: OrderPurpose, quantity: Decimal) -> Outcome:
        """Record, send and settle one order; its outcome is left for the caller to commit."""
        order = self.prepare(position, purpose, quantity)
        future = self.desk.ask_venue_async(position.venue, order)
        row = self.desk.repo.get_order(position.venue, order.client_id)
        return self.outcome(position, row, order, future)

    def send(self, position: PositionRecord, purpose: OrderPurpose, quantity: Decimal) -> Reply:
        """Record, send, settle and record one order (committed before this returns)."""
        outcome = self.place(position, purpose, quantity)
        self.commit(outcome)
        return outcome.reply

    def outcome(
        self, position: PositionRecord, row: OrderRecord, order: PlaceOrder, future: pykka.Future[Any]
    ) -> Outcome:
        """Wait for a sent order's reply and settle it; `row` is the order as recorded before it was sent."""
        return outcome_of(row, self._settled(position, order, future))

    def finish(self, position: PositionRecord, order: PlaceOrder, future: pykka.Future[Any]) -> Reply:
        """Wait for a sent order's reply, settle it and record it (committed before this returns)."""
        reply = self._settled(position, order, future)
        self.desk.write(one_write(writes_for(reply)))
        return reply

    def commit(self, outcome: Outcome) -> None:
        """Write an outcome (one transaction)."""
        self.desk.write(one_write(outcome.writes))

    def _settled(self, position: PositionRecord, order: PlaceOrder, future: pykka.Future[Any]) -> Reply:
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
        self.desk.timings.order_settled(position.venue, reply, time.perf_counter() - started)
        return reply

    def book_external(
        self, position: PositionRecord, purpose: OrderPurpose, quantity: Decimal, price: Decimal | None, note: str
    ) -> None:
        """Book a change the venue made without an order of ours (a liquidation, a hand trade, a position we
        adopt) as a filled `external` order, so the leg's books stay the sum of its orders."""
        new = self._new_order(position, purpose, quantity, "external")
        self.desk.write(RecordOrder(new))
        self.desk.write(
            UpdateOrder(
                position.venue,
                new.client_id,
                OrderState.FILLED,
                filled_quantity=quantity,
                avg_price=price,
                fee=Decimal(0),
                error=note,
            )
        )

    def settle(
        self, position: PositionRecord, client_id: str, reply: Reply, created_at: datetime | None = None
    ) -> Reply:
        """Look an unknown or unfinished order up until its outcome is final (or give up: in flight). A lookup
        that finds an order older than ours (`created_at`: our row's, read when needed) counts as not found."""
        for _ in range(SETTLE_LOOKUPS):
            if is_final(reply):
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

    def resolve(self, position: PositionRecord) -> bool:
        """Settle every unresolved order of a leg by lookup, each recorded; True when none is left unresolved."""
        done = True
        for order in self.desk.repo.orders_for_position(position.id):
            if not is_unresolved(order):
                continue
            reply = self.look_up(position, order)
            if reply is None:
                done = False
                continue
            outcome = outcome_of(order, reply)
            self.commit(outcome)
            done = done and outcome.final
        return done

    def look_up(self, position: PositionRecord, order: OrderRecord) -> Reply | None:
        """One more word on an unresolved order (`order`: its row as it stands): a lookup, settled, or the
        age rule's verdict that it never reached the venue (a refusal). None when nothing new is known (the
        lookup failed, or a request of ours could still land)."""
        try:
            looked = self.desk.ask_venue(position.venue, LookupOrder(position.symbol, order.client_id))
        except Exception as exc:  # noqa: BLE001 - venue down: try again on a later tick
            log.warning("lookup of %s on %s failed: %s", order.client_id, position.venue, exc)
            return None
        not_ours = self.not_ours(position, order.client_id, looked, order.created_at)
        if isinstance(looked, OrderUnknown) or not_ours:
            wait_s = looked.expiry_s + UNKNOWN_MARGIN_S if isinstance(looked, OrderUnknown) else NOT_OURS_WAIT_S
            if self.desk.clock.now() - order.created_at < timedelta(seconds=wait_s):
                return None  # a request of ours could still land: wait
            found = "; the order found under its id was created before it: not ours" if not_ours else ""
            never = f"never reached the venue (status was {order.status}){found}"
            return OrderRejected(position.venue, order.client_id, None, never)
        if order.type == OrderType.LIMIT.value and not is_final(looked):
            # A maker order left resting (a crash, a dead hedger): cancelled, so that what it filled is final and
            # the pair can be concluded, hedged or unwound from its books.
            looked = self.cancel(position, order.client_id)
            if looked is None:
                return None
        return self.settle(position, order.client_id, looked, order.created_at)

    def cancel(self, position: PositionRecord, client_id: str) -> Reply | None:
        """Cancel a resting order; its word afterwards (final, or not yet: settle it), or None when the venue
        could not be asked."""
        try:
            reply = self.desk.ask_venue(position.venue, CancelOrder(position.symbol, client_id))
        except Exception as exc:  # noqa: BLE001 - venue or actor down: the order may still rest; try again later
            log.warning("cancel of %s on %s failed: %s", client_id, position.venue, exc)
            return None
        if isinstance(reply, OrderUnknown):
            return OrderInFlight(position.venue, client_id, "cancel: the venue does not know the order")
        return reply

    def settled(self, position: PositionRecord, outcome: Outcome) -> Outcome:
        """The outcome with one more lookup when it is not final yet (unchanged when nothing new is known)."""
        if outcome.final:
            return outcome
        reply = self.look_up(position, outcome.order)
        return outcome if reply is None else outcome.then(reply)
