"""Frozen rows handed out by the repository: readers never hold a live ORM object or a session."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, Self

from sqlalchemy import RowMapping

from core.domain import EventLevel, OrderPurpose, PairState, Side, Venue


class _Record:
    __slots__ = ()
    _enums: dict[str, type] = {}  # noqa: RUF012

    @classmethod
    def from_row(cls, row: RowMapping) -> Self:
        values: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            value = row[f.name]
            enum = cls._enums.get(f.name)
            values[f.name] = enum(value) if enum is not None and value is not None else value
        return cls(**values)


@dataclass(frozen=True, slots=True)
class PairRecord(_Record):
    """One hedged pair as stored."""

    id: int
    market: str
    long_venue: Venue
    short_venue: Venue
    leverage: Decimal
    notional: Decimal
    quantity: Decimal
    duration_s: int
    state: PairState
    created_at: datetime
    updated_at: datetime
    opened_at: datetime | None
    expires_at: datetime | None
    closed_at: datetime | None
    close_reason: str | None
    realized_pnl: Decimal | None
    fees: Decimal | None
    funding: Decimal | None
    volume: Decimal | None
    points: Decimal | None

    _enums = {"long_venue": Venue, "short_venue": Venue, "state": PairState}  # noqa: RUF012


@dataclass(frozen=True, slots=True)
class PositionRecord(_Record):
    """One leg of a pair on one venue."""

    id: int
    pair_id: int
    venue: Venue
    symbol: str
    side: Side
    quantity: Decimal
    entry_price: Decimal | None
    mark_price: Decimal | None
    exit_price: Decimal | None
    unrealized_pnl: Decimal | None
    realized_pnl: Decimal | None
    fees: Decimal | None
    funding: Decimal | None
    leverage_set: Decimal | None
    venue_position_id: str | None
    state: str
    updated_at: datetime

    _enums = {"venue": Venue, "side": Side}  # noqa: RUF012


@dataclass(frozen=True, slots=True)
class OrderRecord(_Record):
    """One order sent (or about to be sent) to a venue."""

    id: int
    pair_id: int
    position_id: int
    venue: Venue
    client_id: str
    venue_order_id: str | None
    purpose: OrderPurpose
    attempt: int
    side: Side
    type: str
    reduce_only: bool
    quantity: Decimal
    price: Decimal | None
    status: str
    filled_quantity: Decimal
    avg_price: Decimal | None
    fee: Decimal | None
    created_at: datetime
    updated_at: datetime
    error: str | None

    _enums = {"venue": Venue, "purpose": OrderPurpose, "side": Side}  # noqa: RUF012


@dataclass(frozen=True, slots=True)
class FillRecord(_Record):
    """One execution of an order, as the venue reported it."""

    id: int
    order_id: int
    venue: Venue
    venue_fill_id: str
    price: Decimal
    quantity: Decimal
    fee: Decimal
    fee_asset: str | None
    is_maker: bool | None
    ts: datetime

    _enums = {"venue": Venue}  # noqa: RUF012


@dataclass(frozen=True, slots=True)
class EventRecord(_Record):
    """Something that happened, kept for the operator (and the alert sinks)."""

    id: int
    ts: datetime
    level: EventLevel
    kind: str
    pair_id: int | None
    message: str
    data: dict[str, Any]

    _enums = {"level": EventLevel}  # noqa: RUF012


@dataclass(frozen=True, slots=True)
class SnapshotRecord(_Record):
    """A monitor reading of one pair at one time."""

    id: int
    ts: datetime
    pair_id: int
    long_mark: Decimal | None
    short_mark: Decimal | None
    long_upnl: Decimal | None
    short_upnl: Decimal | None
    long_collateral_ratio: Decimal | None
    short_collateral_ratio: Decimal | None
    divergence: Decimal | None
