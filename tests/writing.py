"""Writing a test database through the PersistenceWriter's own code, without starting its actor."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from actors.writer import PersistenceWriter
from core.clock import Clock
from core.domain import Side, Venue
from storage.records import LegPlan, PairPlan


def write(db: Engine, clock: Clock, message: Any) -> Any:
    """Apply one write message as the writer does (its transaction, its reply), on the calling thread."""
    return PersistenceWriter("writer", 0, clock, None, db=db).handle(message)


# A BTC pair, long Backpack, short Hibachi: the plan the storage tests write.
PLAN = PairPlan(
    "BTC",
    LegPlan(Venue.BACKPACK, "BTC_USDC_PERP", Side.LONG),
    LegPlan(Venue.HIBACHI, "BTC/USDT-P", Side.SHORT),
    Decimal(2),
    Decimal(1000),
    Decimal("0.01"),
    3600,
)
