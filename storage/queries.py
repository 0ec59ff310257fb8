"""Every read of the database, for every actor, the reports, live/ and the control socket.

Reads never wait for the writer (SQLite WAL) and hand out frozen records, never a live row or a session. One
database can hold several accounts' pairs: a Queries sees one account's (or, with account None, every one's).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Engine, Select, Table, false, func, inspect, literal, or_, select

from core.domain import ACTIVE_STATES, PairState, Venue
from core.ids import check_namespace
from core.ledger import net_quantity
from storage.accounts import check_account, meta_key
from storage.errors import NotFoundError
from storage.records import (
    EventRecord,
    FillRecord,
    OrderRecord,
    PairRecord,
    PositionRecord,
    SnapshotRecord,
    long_first,
)
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


@dataclass(frozen=True, slots=True)
class _Scope:
    """How to read one table carrying an account column: the columns to select, and the filter to the account."""

    columns: tuple[ColumnElement[Any], ...]
    where: tuple[ColumnElement[bool], ...]

    @classmethod
    def of(cls, table: Table, account: str | None, has_column: bool) -> _Scope:
        """`table` as `account` (None: every account) sees it; a database written before accounts (read, never
        upgraded, by a report) has no account column: its every row is "default"'s."""
        if has_column:
            where = () if account is None else (table.c.account == account,)
            return cls(tuple(table.c), where)
        others = tuple(c for c in table.c if c.name != "account")
        where = () if account in (None, DEFAULT_ACCOUNT) else (false(),)
        return cls((*others, literal(DEFAULT_ACCOUNT).label("account")), where)


class Queries:
    """All reads, over one Engine; safe to share between threads. `account` scopes the reads that find pairs (and
    events and meta keys) to one account; None reads every account's. Reads by a pair's, leg's or order's id are
    not filtered: those ids come from a scoped read (and pair ids are unique across accounts)."""

    def __init__(self, engine: Engine, account: str | None = DEFAULT_ACCOUNT) -> None:
        self.engine = engine
        self.account = None if account is None else check_account(account)
        self._namespace: str | None = None
        self._namespace_lock = threading.Lock()
        self._scopes: tuple[_Scope, _Scope] | None = None

    def _scoped(self) -> tuple[_Scope, _Scope]:
        """The pairs' and the events' scopes, worked out on the first read (the schema does not change under a
        reader: a writer upgrades it before it reads)."""
        if self._scopes is None:  # two threads may both work it out: they find the same, no lock needed
            with self.engine.connect() as conn:
                has_column = any(c["name"] == "account" for c in inspect(conn).get_columns(hedge_pairs.name))
            self._scopes = (
                _Scope.of(hedge_pairs, self.account, has_column),
                _Scope.of(events, self.account, has_column),
            )
        return self._scopes

    def _pairs(self) -> Select[*tuple[Any, ...]]:
        """A select of this account's pairs (every column)."""
        pairs = self._scoped()[0]
        return select(*pairs.columns).where(*pairs.where)

    @property
    def client_id_namespace(self) -> str:
        """This database's client-id namespace (read once: it never changes). open_database() draws it, so only
        a read-only reader of a database no engine ever opened finds none (RuntimeError)."""
        with self._namespace_lock:
            if self._namespace is None:
                stored = self.get_meta(CLIENT_ID_NAMESPACE_KEY)
                if stored is None:
                    raise RuntimeError("this database has no client-id namespace: open it with open_database()")
                self._namespace = check_namespace(stored)
            return self._namespace

    def get_meta(self, key: str) -> str | None:
        """The value this account keeps under `key` in the meta table (storage.accounts.meta_key; with account
        None, the key as stored), or None."""
        stored = key if self.account is None else meta_key(key, self.account)
        with self.engine.connect() as conn:
            value: str | None = conn.execute(select(meta.c.value).where(meta.c.key == stored)).scalar()
        return value

    def get_pair(self, pair_id: int) -> PairRecord:
        """One pair; NotFoundError when there is none (or it is another account's)."""
        with self.engine.connect() as conn:
            row = conn.execute(self._pairs().where(hedge_pairs.c.id == pair_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"pair {pair_id} does not exist")
        return PairRecord.from_row(row)

    def list_pairs(self, states: Iterable[PairState] | None = None, limit: int | None = None) -> list[PairRecord]:
        """Pairs, newest first, optionally only those in `states`."""
        query = self._pairs().order_by(hedge_pairs.c.id.desc())
        if states is not None:
            query = query.where(hedge_pairs.c.state.in_([s.value for s in states]))
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [PairRecord.from_row(r) for r in conn.execute(query).mappings()]

    def pairs_open_in_market(self, market: str, start: datetime, end: datetime) -> list[PairRecord]:
        """Pairs of `market` that were open at some time between `start` and `end` (opened before `end`, and not
        closed, or closed after `start`), newest first."""
        query = (
            self._pairs()
            .where(
                hedge_pairs.c.market == market,
                hedge_pairs.c.opened_at.is_not(None),
                hedge_pairs.c.opened_at < end,
                or_(hedge_pairs.c.closed_at.is_(None), hedge_pairs.c.closed_at > start),
            )
            .order_by(hedge_pairs.c.id.desc())
        )
        with self.engine.connect() as conn:
            return [PairRecord.from_row(r) for r in conn.execute(query).mappings()]

    def list_active_pairs(self) -> list[PairRecord]:
        """Every pair that is not CLOSED or FAILED: what may still hold something on a venue."""
        return self.list_pairs(ACTIVE_STATES)

    def count_pairs_by_state(self) -> dict[PairState, int]:
        """How many pairs are in each state."""
        where = self._scoped()[0].where
        query = select(hedge_pairs.c.state, func.count()).where(*where).group_by(hedge_pairs.c.state)
        with self.engine.connect() as conn:
            return {PairState(state): count for state, count in conn.execute(query)}

    def positions_for_pair(self, pair_id: int) -> list[PositionRecord]:
        """The pair's legs, long first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(positions).where(positions.c.pair_id == pair_id).order_by(positions.c.id))
            legs = [PositionRecord.from_row(r) for r in rows.mappings()]
        return sorted(legs, key=long_first)

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

    def held(self, position_id: int) -> Decimal:
        """What one leg holds by its orders: opened minus reduced (core.ledger.net_quantity)."""
        return net_quantity(self.orders_for_position(position_id))

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
        for leg in sorted(legs, key=long_first):
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
        """How many events of each level this account's engine stored."""
        where = self._scoped()[1].where
        with self.engine.connect() as conn:
            return dict(conn.execute(select(events.c.level, func.count()).where(*where).group_by(events.c.level)).all())

    def list_events(self, pair_id: int | None = None, limit: int = 100) -> list[EventRecord]:
        """Most recent events first, for one pair or all (of this account's engine)."""
        scope = self._scoped()[1]
        query = select(*scope.columns).where(*scope.where).order_by(events.c.id.desc()).limit(limit)
        if pair_id is not None:
            query = query.where(events.c.pair_id == pair_id)
        with self.engine.connect() as conn:
            return [EventRecord.from_row(r) for r in conn.execute(query).mappings()]

    def list_snapshots(self, pair_id: int) -> list[SnapshotRecord]:
        """A pair's snapshots in time order."""
        query = select(snapshots).where(snapshots.c.pair_id == pair_id).order_by(snapshots.c.ts, snapshots.c.id)
        with self.engine.connect() as conn:
            return [SnapshotRecord.from_row(r) for r in conn.execute(query).mappings()]
