"""Queries and writes. Reads are for every actor; writes are called by the PersistenceWriter alone.

Each write is one transaction: a pair's state change and its event row commit together or not at all.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from core.clock import Clock
from core.domain import ACTIVE_STATES, EventLevel, OrderPurpose, PairState, Side, Venue, check_transition
from core.ids import OrderKey, check_namespace, new_namespace
from exchanges.registry import client_id_for
from storage.records import (
    EventRecord,
    FillRecord,
    OrderRecord,
    PairRecord,
    PositionRecord,
    SnapshotRecord,
)
from storage.schema import events, fills, hedge_pairs, meta, orders, positions, snapshots

# The meta key of the database's client-id namespace: drawn once, never changed (core/ids.py).
CLIENT_ID_NAMESPACE_KEY = "client_id_namespace"


class TransitionRefusedError(Exception):
    """The pair was not in the state the caller expected (someone else moved it first)."""

    def __init__(self, pair_id: int, expected: PairState, actual: PairState | None) -> None:
        super().__init__(f"pair {pair_id}: expected state {expected}, found {actual}")
        self.pair_id = pair_id
        self.expected = expected
        self.actual = actual


class NotFoundError(LookupError):
    """No row with that key."""


@dataclass(frozen=True, slots=True)
class LegPlan:
    """One leg of a planned pair."""

    venue: Venue
    symbol: str
    side: Side


@dataclass(frozen=True, slots=True)
class PairPlan:
    """Everything decided about a pair before any order is sent."""

    market: str
    long: LegPlan
    short: LegPlan
    leverage: Decimal
    notional: Decimal
    quantity: Decimal
    duration_s: int


@dataclass(frozen=True, slots=True)
class NewOrder:
    """An order about to be sent; recorded first so a crash never forgets it."""

    pair_id: int
    position_id: int
    venue: Venue
    client_id: str
    purpose: OrderPurpose
    attempt: int
    side: Side
    order_type: str
    quantity: Decimal
    price: Decimal | None = None
    reduce_only: bool = False


@dataclass(frozen=True, slots=True)
class NewFill:
    """One execution reported by a venue."""

    venue: Venue
    client_id: str
    venue_fill_id: str
    price: Decimal
    quantity: Decimal
    fee: Decimal
    ts: datetime
    fee_asset: str | None = None
    is_maker: bool | None = None


def jsonable(value: Any) -> Any:
    """Event data made JSON-safe: Decimals and times as strings, enums as values; anything else raises."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    raise TypeError(f"event data holds a {type(value).__name__}, which has no JSON form")


# Built once: constructing a RETURNING statement costs more than executing its cached compiled form. The
# multi-row ones return rows in no promised order (asking for parameter order makes SQLite run one INSERT
# per row), so their rows are matched up by content.
_INSERT_PAIR_RETURNING = insert(hedge_pairs).returning(*hedge_pairs.c)
_INSERT_POSITIONS_RETURNING = insert(positions).returning(*positions.c)
_INSERT_ORDERS_RETURNING = insert(orders).returning(*orders.c)
# The row is named by bound parameters (prefixed: plain column names are taken by the SET clause), so one
# statement object serves every call and SQLAlchemy reuses its compiled form.
_UPDATE_PAIR = update(hedge_pairs).where(hedge_pairs.c.id == bindparam("w_id"))
_TRANSITION_PAIR = update(hedge_pairs).where(
    hedge_pairs.c.id == bindparam("w_id"), hedge_pairs.c.state == bindparam("w_state")
)
_UPDATE_POSITION = update(positions).where(positions.c.id == bindparam("w_id"))
_MARK_ORDER = (
    update(orders)
    .where(orders.c.venue == bindparam("w_venue"), orders.c.client_id == bindparam("w_client_id"))
    .returning(orders.c.id)
)
_ORDER_IDS = select(orders.c.venue, orders.c.client_id, orders.c.id).where(
    tuple_(orders.c.venue, orders.c.client_id).in_(bindparam("keys", expanding=True))
)
_STORED_FILLS = select(fills.c.venue, fills.c.venue_fill_id).where(
    tuple_(fills.c.venue, fills.c.venue_fill_id).in_(bindparam("keys", expanding=True))
)


def _long_first(record: PositionRecord | OrderRecord) -> bool:
    """Sort key: the long leg (or its order) before the short one."""
    return record.side is not Side.LONG


def _order_row(order: NewOrder, now: datetime) -> dict[str, Any]:
    """The row of an order about to be sent: status `created`, nothing filled yet."""
    return {
        "pair_id": order.pair_id,
        "position_id": order.position_id,
        "venue": order.venue.value,
        "client_id": order.client_id,
        "purpose": order.purpose.value,
        "attempt": order.attempt,
        "side": order.side.value,
        "type": order.order_type,
        "reduce_only": order.reduce_only,
        "quantity": order.quantity,
        "price": order.price,
        "status": "created",
        "filled_quantity": Decimal(0),
        "created_at": now,
        "updated_at": now,
    }


_PAIR_UPDATABLE = frozenset(
    {
        "leverage",
        "quantity",
        "opened_at",
        "expires_at",
        "closed_at",
        "close_reason",
        "realized_pnl",
        "fees",
        "funding",
        "volume",
        "points",
    }
)
_POSITION_UPDATABLE = frozenset(
    {
        "quantity",
        "entry_price",
        "mark_price",
        "exit_price",
        "unrealized_pnl",
        "realized_pnl",
        "fees",
        "funding",
        "leverage_set",
        "venue_position_id",
        "state",
    }
)


def _check_columns(changes: Mapping[str, Any], allowed: frozenset[str], table: str) -> None:
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"{table}: cannot change {sorted(unknown)}")


class Repository:
    """All database access of the engine, over one Engine; safe to share between threads.

    Writes pass their values as execution parameters of a constant statement (never `.values(...)`), so
    SQLAlchemy reuses the compiled statement instead of rebuilding it: this halves the cost of a write."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        self._local = threading.local()  # the open batch's connection, per writing thread
        self._namespace: str | None = None
        self._namespace_lock = threading.Lock()

    @property
    def client_id_namespace(self) -> str:
        """This database's client-id namespace: read, or drawn and stored on first use (a database made before
        namespaces existed gets one then), so it exists before any order is minted. A reader that never mints
        (`report`, on a read-only connection) never writes it."""
        with self._namespace_lock:
            if self._namespace is None:
                self._namespace = self._client_id_namespace()
            return self._namespace

    def _client_id_namespace(self) -> str:
        stored = self.get_meta(CLIENT_ID_NAMESPACE_KEY)
        if stored is None:
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(meta), {"key": CLIENT_ID_NAMESPACE_KEY, "value": new_namespace()})
            except IntegrityError:
                pass  # another process opening the same database drew one first: theirs stands
            stored = self.get_meta(CLIENT_ID_NAMESPACE_KEY)
        if stored is None:
            raise RuntimeError("the client-id namespace could not be stored")
        return check_namespace(stored)

    # ---- meta -------------------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        """The value stored under `key` in the meta table, or None."""
        with self.engine.connect() as conn:
            value: str | None = conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()
        return value

    def set_meta(self, key: str, value: str | None) -> None:
        """Store `value` under `key` (insert or replace; None removes it). The client-id namespace cannot be
        changed."""
        if key == CLIENT_ID_NAMESPACE_KEY:
            raise ValueError("the client-id namespace is fixed for the life of the database")
        with self._write() as conn:
            if value is None:
                conn.execute(delete(meta).where(meta.c.key == key))
            elif conn.execute(update(meta).where(meta.c.key == key), {"value": value}).rowcount == 0:
                conn.execute(insert(meta), {"key": key, "value": value})

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

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Every write made inside (by this thread) commits together, or none does: one transaction."""
        if getattr(self._local, "conn", None) is not None:
            raise RuntimeError("write batches do not nest")
        with self.engine.begin() as conn:
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    # ---- writes -----------------------------------------------------------------------------------------

    def begin_open(
        self, plan: PairPlan, leverage_set: Mapping[Venue, Decimal]
    ) -> tuple[PairRecord, list[PositionRecord], list[OrderRecord]]:
        """Plan a pair, move it to OPENING and record both opening orders (status `created`) in one
        transaction, so a crash leaves all of it for reconciliation or none of it. Returns the pair, its legs
        (long first) and their orders."""
        check_transition(PairState.PLANNED, PairState.OPENING)
        now = self.clock.now()
        namespace = self.client_id_namespace  # before the transaction: drawing it may need a write of its own
        # Four statements, each row returned by its own INSERT (RETURNING goes through the same column types
        # as a read): every statement here stands between deciding to open and the orders leaving.
        with self._write() as conn:
            pair = PairRecord.from_row(
                conn.execute(
                    _INSERT_PAIR_RETURNING,
                    {
                        "market": plan.market,
                        "long_venue": plan.long.venue.value,
                        "short_venue": plan.short.venue.value,
                        "leverage": plan.leverage,
                        "notional": plan.notional,
                        "quantity": plan.quantity,
                        "duration_s": plan.duration_s,
                        "state": PairState.OPENING.value,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
                .mappings()
                .one()
            )
            sides = (plan.long, plan.short)
            legs = sorted(
                (
                    PositionRecord.from_row(row)
                    for row in conn.execute(
                        _INSERT_POSITIONS_RETURNING,
                        [
                            {
                                "pair_id": pair.id,
                                "venue": leg.venue.value,
                                "symbol": leg.symbol,
                                "side": leg.side.value,
                                "quantity": plan.quantity,
                                "leverage_set": leverage_set[leg.venue],
                                "state": "pending",
                                "updated_at": now,
                            }
                            for leg in sides
                        ],
                    ).mappings()
                ),
                key=_long_first,
            )
            opening = [
                OrderRecord.from_row(row)
                for row in conn.execute(
                    _INSERT_ORDERS_RETURNING,
                    [
                        _order_row(
                            NewOrder(
                                pair_id=pair.id,
                                position_id=position.id,
                                venue=leg.venue,
                                client_id=client_id_for(
                                    leg.venue,
                                    OrderKey(pair.id, leg.side, OrderPurpose.OPEN, 0),
                                    namespace,
                                ),
                                purpose=OrderPurpose.OPEN,
                                attempt=0,
                                side=leg.side,
                                order_type="market",
                                quantity=plan.quantity,
                            ),
                            now,
                        )
                        for leg, position in zip(sides, legs, strict=True)
                    ],
                ).mappings()
            ]
            opening.sort(key=_long_first)
            figures = {"quantity": plan.quantity, "leverage": plan.leverage}
            conn.execute(
                insert(events),
                [
                    self._event_row(
                        EventLevel.INFO,
                        "pair_planned",
                        f"pair {pair.id} planned: {plan.market} long {plan.long.venue} / short {plan.short.venue}, "
                        f"qty {plan.quantity}, leverage {plan.leverage}",
                        pair.id,
                        figures | {"notional": plan.notional},
                    ),
                    self._event_row(
                        EventLevel.INFO,
                        "pair_opening",
                        f"pair {pair.id}: {PairState.PLANNED} -> {PairState.OPENING}: sending both legs",
                        pair.id,
                        {"from": PairState.PLANNED, "to": PairState.OPENING, "reason": "sending both legs", **figures},
                    ),
                ],
            )
        return pair, legs, opening  # long first: the order the plan gave them

    def create_pair(self, plan: PairPlan) -> PairRecord:
        """Insert a PLANNED pair with its two legs and a `pair_planned` event."""
        now = self.clock.now()
        with self._write() as conn:
            pair_id = conn.execute(
                insert(hedge_pairs),
                {
                    "market": plan.market,
                    "long_venue": plan.long.venue.value,
                    "short_venue": plan.short.venue.value,
                    "leverage": plan.leverage,
                    "notional": plan.notional,
                    "quantity": plan.quantity,
                    "duration_s": plan.duration_s,
                    "state": PairState.PLANNED.value,
                    "created_at": now,
                    "updated_at": now,
                },
            ).inserted_primary_key[0]
            for leg in (plan.long, plan.short):
                conn.execute(
                    insert(positions),
                    {
                        "pair_id": pair_id,
                        "venue": leg.venue.value,
                        "symbol": leg.symbol,
                        "side": leg.side.value,
                        "quantity": plan.quantity,
                        "state": "pending",
                        "updated_at": now,
                    },
                )
            self._insert_event(
                conn,
                EventLevel.INFO,
                "pair_planned",
                f"pair {pair_id} planned: {plan.market} long {plan.long.venue} / short {plan.short.venue}, "
                f"qty {plan.quantity}, leverage {plan.leverage}",
                pair_id,
                {"quantity": plan.quantity, "leverage": plan.leverage, "notional": plan.notional},
            )
            return self._pair(conn, pair_id)

    def transition_pair(
        self,
        pair_id: int,
        expected: PairState,
        to: PairState,
        reason: str,
        changes: Mapping[str, Any] | None = None,
        level: EventLevel = EventLevel.INFO,
        data: Mapping[str, Any] | None = None,
    ) -> int:
        """Move a pair expected -> to, apply `changes`, and add the event row, in one transaction.

        Raises IllegalTransitionError when the table forbids the move, TransitionRefusedError when the
        pair is not in `expected`. Returns the event id.
        """
        check_transition(expected, to)
        changes = dict(changes or {})
        _check_columns(changes, _PAIR_UPDATABLE, "hedge_pairs")
        now = self.clock.now()
        with self._write() as conn:
            result = conn.execute(
                _TRANSITION_PAIR,
                dict(state=to.value, updated_at=now, **changes, w_id=pair_id, w_state=expected.value),
            )
            if result.rowcount != 1:
                actual = conn.execute(select(hedge_pairs.c.state).where(hedge_pairs.c.id == pair_id)).scalar()
                raise TransitionRefusedError(pair_id, expected, PairState(actual) if actual else None)
            return self._insert_event(
                conn,
                level,
                f"pair_{to.value}",
                f"pair {pair_id}: {expected} -> {to}: {reason}",
                pair_id,
                {"from": expected, "to": to, "reason": reason, **(data or {})},
            )

    def update_pair(self, pair_id: int, **changes: Any) -> None:
        """Change a pair's figures (PnL, fees, volume...) without a state change."""
        _check_columns(changes, _PAIR_UPDATABLE, "hedge_pairs")
        with self._write() as conn:
            result = conn.execute(_UPDATE_PAIR, dict(updated_at=self.clock.now(), **changes, w_id=pair_id))
            if result.rowcount != 1:
                raise NotFoundError(f"pair {pair_id} does not exist")

    def update_position(self, position_id: int, **changes: Any) -> None:
        """Change a leg's figures."""
        _check_columns(changes, _POSITION_UPDATABLE, "positions")
        with self._write() as conn:
            result = conn.execute(_UPDATE_POSITION, dict(updated_at=self.clock.now(), **changes, w_id=position_id))
            if result.rowcount != 1:
                raise NotFoundError(f"position {position_id} does not exist")

    def record_order(self, order: NewOrder) -> OrderRecord:
        """Insert an order row (status `created`) before it is sent; the client id must be new."""
        now = self.clock.now()
        with self._write() as conn:
            row = conn.execute(_INSERT_ORDERS_RETURNING, _order_row(order, now)).mappings().one()
            return OrderRecord.from_row(row)

    def update_order(
        self,
        venue: Venue,
        client_id: str,
        status: str,
        *,
        venue_order_id: str | None = None,
        filled_quantity: Decimal | None = None,
        avg_price: Decimal | None = None,
        fee: Decimal | None = None,
        error: str | None = None,
    ) -> OrderRecord:
        """Record what the venue says about an order; fields left None keep their stored value."""
        order_id = self.mark_order(
            venue,
            client_id,
            status,
            venue_order_id=venue_order_id,
            filled_quantity=filled_quantity,
            avg_price=avg_price,
            fee=fee,
            error=error,
        )
        with self._write() as conn:
            return OrderRecord.from_row(conn.execute(select(orders).where(orders.c.id == order_id)).mappings().one())

    def mark_order(
        self,
        venue: Venue,
        client_id: str,
        status: str,
        *,
        venue_order_id: str | None = None,
        filled_quantity: Decimal | None = None,
        avg_price: Decimal | None = None,
        fee: Decimal | None = None,
        error: str | None = None,
    ) -> int:
        """update_order() in one statement, without reading the row back; returns the order's id."""
        values: dict[str, Any] = {"status": status, "updated_at": self.clock.now()}
        for key, value in (
            ("venue_order_id", venue_order_id),
            ("filled_quantity", filled_quantity),
            ("avg_price", avg_price),
            ("fee", fee),
            ("error", error),
        ):
            if value is not None:
                values[key] = value
        with self._write() as conn:
            order_id = conn.execute(_MARK_ORDER, values | {"w_venue": venue.value, "w_client_id": client_id}).scalar()
        if order_id is None:
            raise NotFoundError(f"no {venue} order with client id {client_id}")
        return int(order_id)

    def record_fill(self, fill: NewFill) -> bool:
        """Insert a fill of a known order; False (and nothing written) when that fill is already stored."""
        return self.record_fills([fill]) == 1

    def record_fills(self, new: Sequence[NewFill]) -> int:
        """Insert the fills not yet stored (known by venue and fill id), in three statements whatever their
        number; returns how many were new. Every fill's order must exist (NotFoundError, nothing written)."""
        if not new:
            return 0
        with self._write() as conn:
            order_keys = sorted({(f.venue.value, f.client_id) for f in new})
            order_ids = {(v, c): i for v, c, i in conn.execute(_ORDER_IDS, {"keys": order_keys})}
            for f in new:
                if (f.venue.value, f.client_id) not in order_ids:
                    raise NotFoundError(f"fill {f.venue_fill_id} for unknown {f.venue} order {f.client_id}")
            seen = {
                (v, i)
                for v, i in conn.execute(_STORED_FILLS, {"keys": [(f.venue.value, f.venue_fill_id) for f in new]})
            }
            rows = []
            for f in new:
                key = (f.venue.value, f.venue_fill_id)
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

    def add_event(
        self,
        level: EventLevel,
        kind: str,
        message: str,
        pair_id: int | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> int:
        """Store an event; returns its id."""
        with self._write() as conn:
            return self._insert_event(conn, level, kind, message, pair_id, data or {})

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
                insert(snapshots),
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
            ).inserted_primary_key[0]

    # ---- reads ------------------------------------------------------------------------------------------

    def get_pair(self, pair_id: int) -> PairRecord:
        """One pair; NotFoundError when there is none."""
        with self.engine.connect() as conn:
            return self._pair(conn, pair_id)

    def list_pairs(self, states: Iterable[PairState] | None = None, limit: int | None = None) -> list[PairRecord]:
        """Pairs, newest first, optionally only those in `states`."""
        query = select(hedge_pairs).order_by(hedge_pairs.c.id.desc())
        if states is not None:
            query = query.where(hedge_pairs.c.state.in_([s.value for s in states]))
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [PairRecord.from_row(r) for r in conn.execute(query).mappings()]

    def list_active_pairs(self) -> list[PairRecord]:
        """Every pair that is not CLOSED or FAILED: what may still hold something on a venue."""
        return self.list_pairs(ACTIVE_STATES)

    def count_pairs_by_state(self) -> dict[PairState, int]:
        """How many pairs are in each state."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(hedge_pairs.c.state, func.count()).group_by(hedge_pairs.c.state))
            return {PairState(state): count for state, count in rows}

    def positions_for_pair(self, pair_id: int) -> list[PositionRecord]:
        """The pair's legs, long first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(positions).where(positions.c.pair_id == pair_id).order_by(positions.c.id))
            legs = [PositionRecord.from_row(r) for r in rows.mappings()]
        return sorted(legs, key=_long_first)

    def orders_for_pair(self, pair_id: int) -> list[OrderRecord]:
        """The pair's orders in the order they were recorded."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(orders).where(orders.c.pair_id == pair_id).order_by(orders.c.id))
            return [OrderRecord.from_row(r) for r in rows.mappings()]

    def orders_for_position(self, position_id: int) -> list[OrderRecord]:
        """One leg's orders in the order they were recorded."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(orders).where(orders.c.position_id == position_id).order_by(orders.c.id))
            return [OrderRecord.from_row(r) for r in rows.mappings()]

    def legs_with_orders(self, pair_ids: Iterable[int]) -> dict[int, list[tuple[PositionRecord, list[OrderRecord]]]]:
        """Each pair's legs (long first) with their orders (in recorded order): two queries for any number of
        pairs, where reading them pair by pair costs three each."""
        ids = list(pair_ids)
        if not ids:
            return {}
        with self.engine.connect() as conn:
            legs = [
                PositionRecord.from_row(r)
                for r in conn.execute(
                    select(positions).where(positions.c.pair_id.in_(ids)).order_by(positions.c.id)
                ).mappings()
            ]
            by_leg: dict[int, list[OrderRecord]] = {leg.id: [] for leg in legs}
            for r in conn.execute(select(orders).where(orders.c.pair_id.in_(ids)).order_by(orders.c.id)).mappings():
                order = OrderRecord.from_row(r)
                by_leg.setdefault(order.position_id, []).append(order)
        out: dict[int, list[tuple[PositionRecord, list[OrderRecord]]]] = {}
        for leg in sorted(legs, key=_long_first):
            out.setdefault(leg.pair_id, []).append((leg, by_leg[leg.id]))
        return out

    def get_order(self, venue: Venue, client_id: str) -> OrderRecord:
        """One order by its venue and client id; NotFoundError when there is none."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(orders).where(orders.c.venue == venue.value, orders.c.client_id == client_id))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFoundError(f"no {venue} order with client id {client_id}")
        return OrderRecord.from_row(row)

    def fills_for_order(self, order_id: int) -> list[FillRecord]:
        """An order's fills in time order."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(fills).where(fills.c.order_id == order_id).order_by(fills.c.ts, fills.c.id))
            return [FillRecord.from_row(r) for r in rows.mappings()]

    def count_events_by_level(self) -> dict[str, int]:
        """How many events of each level are stored."""
        with self.engine.connect() as conn:
            return dict(conn.execute(select(events.c.level, func.count()).group_by(events.c.level)).all())  # type: ignore[arg-type]

    def list_events(self, pair_id: int | None = None, limit: int = 100) -> list[EventRecord]:
        """Most recent events first, for one pair or all."""
        query = select(events).order_by(events.c.id.desc()).limit(limit)
        if pair_id is not None:
            query = query.where(events.c.pair_id == pair_id)
        with self.engine.connect() as conn:
            return [EventRecord.from_row(r) for r in conn.execute(query).mappings()]

    def list_snapshots(self, pair_id: int) -> list[SnapshotRecord]:
        """A pair's snapshots in time order."""
        query = select(snapshots).where(snapshots.c.pair_id == pair_id).order_by(snapshots.c.ts, snapshots.c.id)
        with self.engine.connect() as conn:
            return [SnapshotRecord.from_row(r) for r in conn.execute(query).mappings()]

    # ---- helpers ----------------------------------------------------------------------------------------

    def _pair(self, conn: Connection, pair_id: int) -> PairRecord:
        row = conn.execute(select(hedge_pairs).where(hedge_pairs.c.id == pair_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"pair {pair_id} does not exist")
        return PairRecord.from_row(row)

    def _insert_event(
        self,
        conn: Connection,
        level: EventLevel,
        kind: str,
        message: str,
        pair_id: int | None,
        data: Mapping[str, Any],
    ) -> int:
        row = self._event_row(level, kind, message, pair_id, data)
        return conn.execute(insert(events), row).inserted_primary_key[0]

    def _event_row(
        self, level: EventLevel, kind: str, message: str, pair_id: int | None, data: Mapping[str, Any]
    ) -> dict[str, Any]:
        return {
            "ts": self.clock.now(),
            "level": level.value,
            "kind": kind,
            "pair_id": pair_id,
            "message": message,
            "data": jsonable(data),
        }
