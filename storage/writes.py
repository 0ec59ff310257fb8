"""Every write to the database; in production only the PersistenceWriter (actors/writer.py) may import this.

Each call is one transaction, or joins the open `batch()`: a pair's state change and its event row commit
together or not at all. Writes store what they are given: event text and client ids come from the caller.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, tuple_, update

from core.clock import Clock
from core.domain import PairState, Venue, check_transition
from core.ledger import OrderState
from storage.accounts import check_account, meta_key
from storage.errors import NotFoundError, TransitionRefusedError
from storage.records import (
    LegFigures,
    NewEvent,
    NewFill,
    NewOrder,
    OrderRecord,
    PairPlan,
    PairRecord,
    PositionRecord,
    long_first,
)
from storage.rows import PAIR_CHANGEABLE, event_row, leg_rows, order_row, pair_row
from storage.schema import (
    CLIENT_ID_NAMESPACE_KEY,
    DEFAULT_ACCOUNT,
    events,
    fills,
    hedge_pairs,
    meta,
    orders,
    positions,
    snapshots,
)

# Built once: constructing a RETURNING statement costs more than executing its cached compiled form. The
# multi-row ones return rows in no promised order (asking for parameter order makes SQLite run one INSERT
# per row), so their rows are matched up by content.
_INSERT_PAIR_RETURNING = insert(hedge_pairs).returning(*hedge_pairs.c)
_INSERT_POSITIONS_RETURNING = insert(positions).returning(*positions.c)
_INSERT_ORDERS_RETURNING = insert(orders).returning(*orders.c)
_INSERT_SNAPSHOT_RETURNING = insert(snapshots).returning(snapshots.c.id)
_INSERT_EVENT_RETURNING = insert(events).returning(events.c.id)
# The row is named by bound parameters (prefixed: plain column names are taken by the SET clause), so one
# statement object serves every call and SQLAlchemy reuses its compiled form.
_TRANSITION_PAIR = update(hedge_pairs).where(
    hedge_pairs.c.id == bindparam("w_id"), hedge_pairs.c.state == bindparam("w_state")
)
_UPDATE_POSITION = update(positions).where(positions.c.id == bindparam("w_id"))
_UPDATE_ORDER = (
    update(orders)
    .where(orders.c.venue == bindparam("w_venue"), orders.c.client_id == bindparam("w_client_id"))
    .returning(orders.c.id)
)
_ORDER_IDS = select(orders.c.venue, orders.c.client_id, orders.c.id).where(
    tuple_(orders.c.venue, orders.c.client_id).in_(bindparam("keys", expanding=True))
)
_STORED_FILLS = select(fills.c.order_id, fills.c.venue_fill_id).where(
    tuple_(fills.c.order_id, fills.c.venue_fill_id).in_(bindparam("keys", expanding=True))
)


class Writes:
    """All writes of the engine, over one Engine; one writing thread at a time per batch.

    Writes pass their values as execution parameters of a constant statement (never `.values(...)`), so
    SQLAlchemy reuses the compiled statement instead of rebuilding it: this halves the cost of a write."""

    def __init__(self, engine: Engine, clock: Clock, account: str = DEFAULT_ACCOUNT) -> None:
        self.engine = engine
        self.clock = clock
        self.account = check_account(account)  # stamped on the pairs and events written here; scopes meta keys
        self._local = threading.local()  # the open batch's connection, per writing thread

    # ---- transactions -----------------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """The open batch's connection, or a transaction of this write's own."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            yield conn
            return
        with self.engine.begin() as conn:
            yield conn

    @property
    def in_batch(self) -> bool:
        """True inside `batch()` (on this thread): every write joins its transaction."""
        return getattr(self._local, "conn", None) is not None

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Every write made inside (by this thread) commits together, or none does: one transaction."""
        if self.in_batch:
            raise RuntimeError("write batches do not nest")
        with self.engine.begin() as conn:
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    # ---- meta -------------------------------------------------------------------------------------------

    def set_meta(self, key: str, value: str | None) -> None:
        """Store `value` under `key`, as this account keeps it (storage.accounts.meta_key): insert or replace;
        None removes it. The client-id namespace cannot be changed."""
        if key == CLIENT_ID_NAMESPACE_KEY:
            raise ValueError("the client-id namespace is fixed for the life of the database")
        key = meta_key(key, self.account)
        with self._write() as conn:
            if value is None:
                conn.execute(delete(meta).where(meta.c.key == key))
            elif conn.execute(update(meta).where(meta.c.key == key), {"value": value}).rowcount == 0:
                conn.execute(insert(meta), {"key": key, "value": value})

    # ---- pairs and legs ---------------------------------------------------------------------------------

    def insert_pair(
        self,
        plan: PairPlan,
        leverage_set: Mapping[Venue, Decimal] | None = None,
        *,
        born: PairState = PairState.PLANNED,
    ) -> tuple[PairRecord, list[PositionRecord]]:
        """Insert a pair with its two legs (`pending`, with the leverage each venue set, where known), in state
        `born`: PLANNED, or a state PLANNED may move to. Returns the pair and its legs, long first, as the
        INSERTs returned them (they read as a later read does)."""
        if born is not PairState.PLANNED:
            # Born past PLANNED saves an UPDATE where the move is decided in the same transaction (an open:
            # every statement there stands between deciding and the orders leaving); the move must be legal.
            check_transition(PairState.PLANNED, born)
        now = self.clock.now()
        with self._write() as conn:
            row = conn.execute(_INSERT_PAIR_RETURNING, pair_row(plan, born, self.account, now)).mappings().one()
            pair = PairRecord.from_row(row)
            rows = leg_rows(pair.id, plan, leverage_set, now)
            legs = [PositionRecord.from_row(r) for r in conn.execute(_INSERT_POSITIONS_RETURNING, rows).mappings()]
        return pair, sorted(legs, key=long_first)

    def transition_pair(
        self,
        pair_id: int,
        expected: PairState,
        to: PairState,
        event: NewEvent,
        changes: Mapping[str, Any] | None = None,
    ) -> int:
        """Move a pair expected -> to, apply `changes`, and add `event`, in one transaction.

        Raises IllegalTransitionError when the table forbids the move, TransitionRefusedError when the
        pair is not in `expected`. Returns the event id.
        """
        check_transition(expected, to)
        changes = dict(changes or {})
        unknown = set(changes) - PAIR_CHANGEABLE
        if unknown:
            raise ValueError(f"hedge_pairs: cannot change {sorted(unknown)}")
        with self._write() as conn:
            result = conn.execute(
                _TRANSITION_PAIR,
                dict(state=to.value, updated_at=self.clock.now(), **changes, w_id=pair_id, w_state=expected.value),
            )
            if result.rowcount != 1:
                actual = conn.execute(select(hedge_pairs.c.state).where(hedge_pairs.c.id == pair_id)).scalar()
                raise TransitionRefusedError(pair_id, expected, PairState(actual) if actual else None)
            return self._insert_event(conn, event)

    def update_position(self, position_id: int, figures: LegFigures) -> None:
        """Change a leg's figures (those `figures` does not KEEP)."""
        with self._write() as conn:
            values = dict(updated_at=self.clock.now(), **figures.changes(), w_id=position_id)
            if conn.execute(_UPDATE_POSITION, values).rowcount != 1:
                raise NotFoundError(f"position {position_id} does not exist")

    # ---- orders and fills -------------------------------------------------------------------------------

    def record_orders(self, new: Sequence[NewOrder]) -> list[OrderRecord]:
        """Insert order rows (status `created`) before they are sent, in one statement; every client id must be
        new. Returns the rows in the order given, as the INSERT returned them."""
        if not new:
            return []
        now = self.clock.now()
        with self._write() as conn:
            rows = conn.execute(_INSERT_ORDERS_RETURNING, [order_row(o, now) for o in new]).mappings()
            by_key = {(r.venue, r.client_id): r for r in (OrderRecord.from_row(row) for row in rows)}
        return [by_key[(o.venue, o.client_id)] for o in new]

    def update_order(
        self,
        venue: Venue,
        client_id: str,
        status: OrderState,
        *,
        venue_order_id: str | None = None,
        filled_quantity: Decimal | None = None,
        avg_price: Decimal | None = None,
        fee: Decimal | None = None,
        error: str | None = None,
        quantity: Decimal | None = None,
    ) -> int:
        """Record what the venue says about an order, in one statement; fields left None keep their stored
        value. Returns the order's id (NotFoundError when there is no such order)."""
        values: dict[str, Any] = {"status": OrderState(status).value, "updated_at": self.clock.now()}
        for key, value in (
            ("quantity", quantity),
            ("venue_order_id", venue_order_id),
            ("filled_quantity", filled_quantity),
            ("avg_price", avg_price),
            ("fee", fee),
            ("error", error),
        ):
            if value is not None:
                values[key] = value
        with self._write() as conn:
            order_id = conn.execute(_UPDATE_ORDER, values | {"w_venue": venue.value, "w_client_id": client_id}).scalar()
        if order_id is None:
            raise NotFoundError(f"no {venue} order with client id {client_id}")
        return int(order_id)

    def record_fills(self, new: Sequence[NewFill]) -> int:
        """Insert the fills not yet stored (known by their order and fill id), in three statements whatever their
        number; returns how many were new. Every fill's order must exist (NotFoundError, nothing written)."""
        if not new:
            return 0
        with self._write() as conn:
            order_keys = sorted({(f.venue.value, f.client_id) for f in new})
            order_ids = {(v, c): i for v, c, i in conn.execute(_ORDER_IDS, {"keys": order_keys})}
            for f in new:
                if (f.venue.value, f.client_id) not in order_ids:
                    raise NotFoundError(f"fill {f.venue_fill_id} for unknown {f.venue} order {f.client_id}")
            # A fill is known by its order and its id: Backpack's trade ids repeat across symbols.
            keys = [(order_ids[(f.venue.value, f.client_id)], f.venue_fill_id) for f in new]
            seen = {(o, i) for o, i in conn.execute(_STORED_FILLS, {"keys": keys})}
            rows = []
            for f, key in zip(new, keys, strict=True):
                if key in seen:
                    continue
                seen.add(key)  # the same fill twice in one call is stored once
                rows.append(
                    {
                        "order_id": order_ids[(f.venue.value, f.client_id)],
                        "venue": f.venue.value,
                        "venue_fill_id": f.venue_fill_id,
                        "price": f.price,
                        "quantity": f.quantity,
                        "fee": f.fee,
                        "fee_asset": f.fee_asset,
                        "is_maker": f.is_maker,
                        "ts": f.ts,
                    }
                )
            if rows:
                # Only the persistence writer writes, inside this transaction: nothing can store one of these
                # between the check above and this insert (the unique constraint would still refuse it).
                conn.execute(insert(fills), rows)
            return len(rows)

    # ---- events and snapshots ---------------------------------------------------------------------------

    def add_event(self, event: NewEvent) -> int:
        """Store an event as given; returns its id."""
        with self._write() as conn:
            return self._insert_event(conn, event)

    def add_events(self, new: Sequence[NewEvent]) -> None:
        """Store several events in one statement, in the order given."""
        if not new:
            return
        with self._write() as conn:
            conn.execute(insert(events), [self._event_row(e) for e in new])

    def add_snapshot(
        self,
        pair_id: int,
        *,
        long_mark: Decimal | None,
        short_mark: Decimal | None,
        long_upnl: Decimal | None,
        short_upnl: Decimal | None,
        long_collateral_ratio: Decimal | None,
        short_collateral_ratio: Decimal | None,
        divergence: Decimal | None,
        ts: datetime | None = None,
    ) -> int:
        """Store one monitor reading of a pair."""
        with self._write() as conn:
            return conn.execute(
                _INSERT_SNAPSHOT_RETURNING,
                {
                    "ts": ts or self.clock.now(),
                    "pair_id": pair_id,
                    "long_mark": long_mark,
                    "short_mark": short_mark,
                    "long_upnl": long_upnl,
                    "short_upnl": short_upnl,
                    "long_collateral_ratio": long_collateral_ratio,
                    "short_collateral_ratio": short_collateral_ratio,
                    "divergence": divergence,
                },
            ).scalar_one()

    def _event_row(self, event: NewEvent) -> dict[str, Any]:
        return event_row(event, self.account, self.clock.now())

    def _insert_event(self, conn: Connection, event: NewEvent) -> int:
        return conn.execute(_INSERT_EVENT_RETURNING, self._event_row(event)).scalar_one()
