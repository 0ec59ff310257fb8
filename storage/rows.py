"""The rows storage/writes.py inserts, built from what the writes are given (kept apart so that the writes read
as what they do: one statement after another)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.domain import PairState, Venue
from core.ledger import OrderState, PositionState
from storage.records import NewEvent, NewOrder, PairPlan, jsonable

# What a state change may set on its pair besides the state.
PAIR_CHANGEABLE = frozenset(
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


def pair_row(plan: PairPlan, born: PairState, account: str, now: datetime) -> dict[str, Any]:
    """The row of a new pair of `account`, in state `born`."""
    return {
        "market": plan.market,
        "long_venue": plan.long.venue.value,
        "short_venue": plan.short.venue.value,
        "leverage": plan.leverage,
        "notional": plan.notional,
        "quantity": plan.quantity,
        "duration_s": plan.duration_s,
        "state": born.value,
        "created_at": now,
        "updated_at": now,
        "account": account,
    }


def leg_rows(
    pair_id: int, plan: PairPlan, leverage_set: Mapping[Venue, Decimal] | None, now: datetime
) -> list[dict[str, Any]]:
    """The rows of a new pair's two legs, long first: `pending`, with the leverage each venue set, where known."""
    return [
        {
            "pair_id": pair_id,
            "venue": leg.venue.value,
            "symbol": leg.symbol,
            "side": leg.side.value,
            "quantity": plan.quantity,
            "leverage_set": None if leverage_set is None else leverage_set[leg.venue],
            "state": PositionState.PENDING.value,
            "updated_at": now,
        }
        for leg in (plan.long, plan.short)
    ]


def order_row(order: NewOrder, now: datetime) -> dict[str, Any]:
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
        "status": OrderState.CREATED.value,
        "filled_quantity": Decimal(0),
        "created_at": now,
        "updated_at": now,
    }


def event_row(event: NewEvent, account: str, now: datetime) -> dict[str, Any]:
    """The row of an event written by `account`'s engine."""
    return {
        "ts": now,
        "level": event.level.value,
        "kind": event.kind,
        "pair_id": event.pair_id,
        "message": event.message,
        "data": jsonable(event.data),
        "account": account,
    }
