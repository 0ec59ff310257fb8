"""Frozen rows: those the queries hand out (readers never hold a live ORM object or a session), and the new rows
and changes the writes take in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar, Self

from sqlalchemy import RowMapping

from core.domain import EventLevel, OrderPurpose, PairState, Side, Venue
from core.ledger import OrderState, PositionState

# Each record class's (field name, enum or None) pairs: `fields()` per row was a fifth of a read of many rows.
_COLUMNS: dict[type, tuple[tuple[str, type | None], ...]] = {}


class _Record:
    __slots__ = ()
    _enums: dict[str, type] = {}  # noqa: RUF012
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]  # every record is a @dataclass, which sets it

    @classmethod
    def from_row(cls, row: RowMapping) -> Self:
        columns = _COLUMNS.get(cls)
        if columns is None:
            columns = _COLUMNS[cls] = tuple((f.name, cls._enums.get(f.name)) for f in fields(cls))
        values: dict[str, Any] = {}
        for name, enum in columns:
            value = row[name]
            values[name] = enum(value) if enum is not None and value is not None else value
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
    account: str  # whose pair it is (storage.accounts)

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
    state: PositionState
    updated_at: datetime

    _enums = {"venue": Venue, "side": Side, "state": PositionState}  # noqa: RUF012


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
    status: OrderState
    filled_quantity: Decimal
    avg_price: Decimal | None
    fee: Decimal | None
    created_at: datetime
    updated_at: datetime
    error: str | None

    _enums = {"venue": Venue, "purpose": OrderPurpose, "side": Side, "status": OrderState}  # noqa: RUF012


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
    account: str  # the account of the engine that wrote it

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


def long_first(record: PositionRecord | OrderRecord) -> bool:
    """Sort key: the long leg (or its order) before the short one."""
    return record.side is not Side.LONG


# ---- what the writes take in ---------------------------------------------------------------------------------


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


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event row as its sender composed it; the store adds only the time."""

    level: EventLevel
    kind: str
    message: str
    pair_id: int | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


class Keep(Enum):
    """The value of a figure left as stored (None would store NULL)."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True, slots=True)
class LegFigures:
    """New values for some of a leg's figures: a field left KEEP keeps its stored value, None stores NULL."""

    quantity: Decimal | Keep = KEEP
    entry_price: Decimal | Keep | None = KEEP
    mark_price: Decimal | Keep | None = KEEP
    exit_price: Decimal | Keep | None = KEEP
    unrealized_pnl: Decimal | Keep | None = KEEP
    realized_pnl: Decimal | Keep | None = KEEP
    fees: Decimal | Keep | None = KEEP
    funding: Decimal | Keep | None = KEEP
    leverage_set: Decimal | Keep | None = KEEP
    venue_position_id: str | Keep | None = KEEP
    state: PositionState | Keep = KEEP

    def changes(self) -> dict[str, Any]:
        """The columns to set, by name (enums as their stored value)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not KEEP:
                out[f.name] = value.value if isinstance(value, Enum) else value
        return out


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
