"""Column types that keep money and time exact on every backend.

SQLite has no decimal type: a Numeric column goes through a float and loses digits silently
(0.1 -> 0.100000000000000006). Decimals are therefore stored as fixed-point text on SQLite and as
NUMERIC on PostgreSQL. SQLite also drops timezone offsets, so times are stored as naive UTC and
re-tagged as UTC on load; naive input is refused rather than guessed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Dialect, Numeric, String
from sqlalchemy.types import TypeDecorator, TypeEngine


class DecimalText(TypeDecorator[Decimal]):
    """A Decimal stored losslessly: fixed-point text on SQLite, NUMERIC(38, 18) elsewhere."""

    impl = String(64)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """Text on SQLite (no decimal type there), real NUMERIC on servers that have one."""
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(64))
        return dialect.type_descriptor(Numeric(38, 18, asdecimal=True))

    def process_bind_param(self, value: Decimal | int | str | None, dialect: Dialect) -> str | Decimal | None:
        """Refuse floats; write exact fixed-point text (never an exponent)."""
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError(f"float {value!r} given for a Decimal column: money is never float")
        number = Decimal(value)
        if not number.is_finite():
            raise ValueError(f"{number} cannot be stored in a Decimal column")
        if dialect.name == "sqlite":
            return format(number, "f")
        return number

    def process_result_value(self, value: object, dialect: Dialect) -> Decimal | None:
        """Text or NUMERIC back to Decimal, digit for digit."""
        if value is None:
            return None
        return Decimal(str(value))


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime; naive input is an error, not an assumption."""

    impl = DateTime()
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC and drop the tzinfo for storage."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value} given: store timezone-aware UTC times only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Re-attach UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC)
