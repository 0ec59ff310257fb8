"""PersistenceWriter: the only actor that writes to the database; one transaction per message.

Every other actor reads through storage.queries directly (SQLite WAL: readers never wait for the writer). This
is the one production module that imports storage.writes (tests/test_codebase.py holds it to that).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from typing import Any

from sqlalchemy import Engine

from actors.base import DeathCallback, SupervisedActor
from actors.health import HEARTBEAT_KEY
from actors.livebook import book_of
from actors.messages import (
    BeginOpen,
    CreatePair,
    Heartbeat,
    OpenBegun,
    RecordEvent,
    RecordFills,
    RecordOrder,
    RecordSnapshot,
    SetMeta,
    TransitionPair,
    UpdateOrder,
    UpdatePosition,
    WriteBatch,
    Written,
)
from alerts.policy import Alert
from core.clock import Clock
from core.domain import EventLevel, OrderPurpose, PairState
from core.ids import OrderKey
from exchanges.registry import client_id_for
from storage.checks import probe_write
from storage.failure import is_storage_failure
from storage.queries import Queries
from storage.records import NewOrder, PairRecord, PositionRecord
from storage.schema import DEFAULT_ACCOUNT
from storage.writes import Writes

log = logging.getLogger("events")

_LOG_LEVEL = {EventLevel.INFO: logging.INFO, EventLevel.WARNING: logging.WARNING, EventLevel.CRITICAL: logging.CRITICAL}


class PersistenceWriter(SupervisedActor):
    """Applies write messages to the database (storage.writes) and answers Written once committed."""

    def __init__(
        self,
        name: str,
        generation: int,
        clock: Clock,
        on_death: DeathCallback | None,
        *,
        db: Engine,
        notify: Callable[[Alert], None] | None = None,
        on_storage_failure: Callable[[BaseException], None] | None = None,
        alarm: Callable[[str], None] | None = None,
        account: str = DEFAULT_ACCOUNT,
    ) -> None:
        super().__init__(name, generation, clock, on_death)
        # The account this engine trades: stamped on every pair and event it writes, and it scopes the meta keys.
        self.writes = Writes(db, clock, account)
        self.queries = Queries(db, account)
        self._notify = notify
        self._on_storage_failure = on_storage_failure
        # core/activity.py's alarm: a pair gone NAKED, whoever moved it, ends the maker phases running (the closer
        # must be free to repair it, and no open goes on while a leg is alone).
        self._alarm = alarm
        self.book = book_of(db)  # told what each message changed of the pairs (actors/livebook.py)
        self.book.attach()

    def _alert(self, level: EventLevel, kind: str, message: str, pair_id: int | None, data: dict[str, Any]) -> None:
        """Hand a committed warning or critical event to the alert sinks and the book (never blocks, never raises)."""
        if level is EventLevel.INFO:
            return
        alert = Alert(self.clock.now(), level, kind, message, pair_id, data)
        self.book.board.alerted(alert)
        if self._notify is not None:
            try:
                self._notify(alert)
            except Exception:  # an alert must never cost the write that caused it
                log.exception("alert not queued")

    def handle(self, message: Any) -> Any:
        """Dispatch one write; a failing store is reported to the runtime before the error goes back."""
        try:
            with self.book.committing(message) as commit:
                return commit.done(self._handle(message))
        except Exception as exc:
            if self._on_storage_failure is not None and is_storage_failure(exc):
                self._on_storage_failure(exc)
            raise

    def _handle(self, message: Any) -> Any:
        if isinstance(message, WriteBatch):
            effects: list[Callable[[], None]] = []
            with self.writes.batch():
                written = tuple(self._apply(item, effects) for item in message.items)
            for effect in effects:  # logs and alerts only for what committed
                effect()
            return written
        now: list[Callable[[], None]] = []
        result = self._apply(message, now)
        for effect in now:
            effect()
        return result

    @contextmanager
    def _one_transaction(self) -> Iterator[None]:
        """A batch of its own for a message of several writes, unless it is already inside a WriteBatch's."""
        with nullcontext() if self.writes.in_batch else self.writes.batch():
            yield

    def _apply(self, message: Any, effects: list[Callable[[], None]]) -> Any:
        """Apply one write; its log lines and alerts are appended to `effects`, to run once committed."""
        w = self.writes
        match message:
            case BeginOpen():
                return self._begin_open(message, effects)
            case CreatePair():
                with self._one_transaction():
                    pair_id, legs = self._create_pair(message)
                    for item in message.then(pair_id, legs):  # an adopted position's order and moves
                        self._apply(item, effects)
                return Written(pair_id)
            case TransitionPair():
                event_id = w.transition_pair(
                    message.pair_id, message.expected, message.to, message.event(), message.changes
                )
                effects.append(partial(self._transitioned, message))
                return Written(event_id)
            case UpdatePosition(position_id=position_id, figures=figures):
                w.update_position(position_id, figures)
                return Written(position_id)
            case RecordOrder(order=order):
                return Written(w.record_orders([order])[0].id)
            case UpdateOrder():
                order_id = w.update_order(
                    message.venue,
                    message.client_id,
                    message.status,
                    venue_order_id=message.venue_order_id,
                    filled_quantity=message.filled_quantity,
                    avg_price=message.avg_price,
                    fee=message.fee,
                    error=message.error,
                    quantity=message.quantity,
                )
                return Written(order_id)
            case Heartbeat(ts=ts):
                w.set_meta(HEARTBEAT_KEY, ts.isoformat())
                probe_write(w.engine)  # room for the next rows too, not only for an update in place
                return Written(None)
            case SetMeta(key=key, value=value):
                w.set_meta(key, value)
                return Written(None)
            case RecordFills(fills=fills):
                return Written(w.record_fills(fills))
            case RecordEvent():
                event_id = w.add_event(message.event())
                effects.append(partial(self._evented, message))
                return Written(event_id)
            case RecordSnapshot():
                return Written(
                    w.add_snapshot(
                        message.pair_id,
                        long_mark=message.long_mark,
                        short_mark=message.short_mark,
                        long_upnl=message.long_upnl,
                        short_upnl=message.short_upnl,
                        long_collateral_ratio=message.long_collateral_ratio,
                        short_collateral_ratio=message.short_collateral_ratio,
                        divergence=message.divergence,
                    )
                )
        return super().handle(message)

    def _create_pair(self, m: CreatePair) -> tuple[int, list[PositionRecord]]:
        """A PLANNED pair, its legs and its `pair_planned` event."""
        pair, legs = self._insert_pair(m, PairState.PLANNED)
        self.writes.add_event(m.planned(pair.id))
        return pair.id, legs

    def _insert_pair(self, m: CreatePair, born: PairState) -> tuple[PairRecord, list[PositionRecord]]:
        """The one way a pair is inserted: the pair and its legs, in state `born` (its events are the caller's)."""
        return self.writes.insert_pair(m.plan, dict(m.leverage_set) or None, born=born)

    def _begin_open(self, m: BeginOpen, effects: list[Callable[[], None]]) -> OpenBegun:
        """The pair, its legs, both opening orders (status `created`) and the move to OPENING, in one
        transaction, so a crash leaves all of it for reconciliation or none of it."""
        # Read before the transaction (cached after the first time): a read is a connection of its own, and on an
        # in-memory database (one connection per thread) giving it back would roll the open transaction back.
        namespace = self.queries.client_id_namespace
        with self._one_transaction():
            # Four statements: the pair born OPENING (the move is checked, not a second UPDATE), its legs, its
            # orders, and both events in one INSERT. Each one stands between deciding to open and the orders leaving.
            create = m.create()
            pair, legs = self._insert_pair(create, PairState.OPENING)
            pair_id = pair.id
            orders = (
                self.writes.record_orders(
                    [
                        NewOrder(
                            pair_id=pair_id,
                            position_id=leg.id,
                            venue=leg.venue,
                            client_id=_client_id(leg, OrderPurpose.OPEN, 0, namespace),
                            purpose=OrderPurpose.OPEN,
                            attempt=0,
                            side=leg.side,
                            order_type="market",
                            quantity=m.plan.quantity,
                        )
                        for leg in legs
                    ]
                )
                if m.market_orders
                else []
            )
            opening = m.opening(pair_id)
            self.writes.add_events([create.planned(pair_id), opening.event()])
        effects.append(partial(self._transitioned, opening))
        return OpenBegun(pair_id, tuple(legs), tuple(orders))  # long first: the order the plan gave them

    def _transitioned(self, m: TransitionPair) -> None:
        log.log(_LOG_LEVEL[m.level], "%s", m.text, extra={"pair": m.pair_id})
        self._alert(m.level, f"pair_{m.to.value}", m.text, m.pair_id, m.data)
        if m.to is PairState.NAKED and self._alarm is not None:
            self._alarm(f"pair {m.pair_id} is NAKED")

    def _evented(self, m: RecordEvent) -> None:
        log.log(
            _LOG_LEVEL[m.level],
            "%s: %s",
            m.kind,
            m.message,
            extra={"pair": m.pair_id, "venue": m.data.get("venue"), "fields": m.data},
        )
        self._alert(m.level, m.kind, m.message, m.pair_id, m.data)


def _client_id(leg: PositionRecord, purpose: OrderPurpose, attempt: int, namespace: str) -> str:
    """The client id of a leg's order, from the order's key and the database's namespace: the writer's one call
    into the minting (core.ids.mint, through the venue's form in the registry)."""
    return client_id_for(leg.venue, OrderKey(leg.pair_id, leg.side, purpose, attempt), namespace)
