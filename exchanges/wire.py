"""Pure helpers for reading venue JSON: strict numbers, times and fields, raising MalformedResponse."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from exchanges.errors import MalformedResponse

# A number beyond this is no price, size or balance any venue reports; treat it as corrupt.
MAX_ABS = Decimal("1e15")


def json_object(venue: str, raw: str | bytes, what: str) -> Mapping[str, Any]:
    """A JSON object from the wire, its numbers as Decimal; MalformedResponse naming `what` otherwise."""
    try:
        msg = json.loads(raw, parse_float=Decimal)
    except ValueError:
        raise MalformedResponse(venue, f"{what} is not JSON") from None
    if not isinstance(msg, Mapping):
        raise MalformedResponse(venue, f"{what} is not an object")
    return msg


def flag(venue: str, value: Any, name: str) -> bool | None:
    """A boolean from the wire (None when absent). Text "true"/"false" is read as such, since bool() of the text
    "false" is True (a taker fill booked as maker); anything else is malformed."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise MalformedResponse(venue, f"{name}: expected a boolean, got {value!r}")


def field(venue: str, obj: Any, key: str) -> Any:
    """obj[key] of a JSON object, or MalformedResponse naming what is missing."""
    if not isinstance(obj, Mapping):
        raise MalformedResponse(venue, f"expected an object with {key!r}, got {type(obj).__name__}")
    if key not in obj or obj[key] is None:
        raise MalformedResponse(venue, f"missing field {key!r}")
    return obj[key]


def dec(venue: str, value: Any, name: str) -> Decimal:
    """A finite Decimal from a JSON string or integer (floats are refused: they are not exact)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MalformedResponse(venue, f"{name}: expected a decimal string, got {type(value).__name__}")
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError):
        raise MalformedResponse(venue, f"{name}: {str(value)[:40]!r} is not a number") from None
    if not number.is_finite() or abs(number) > MAX_ABS:
        raise MalformedResponse(venue, f"{name}: {str(value)[:40]!r} is out of range")
    return number


def dec_field(venue: str, obj: Any, key: str) -> Decimal:
    """A required decimal field."""
    return dec(venue, field(venue, obj, key), key)


def opt_dec(venue: str, obj: Any, key: str) -> Decimal | None:
    """An optional decimal field (absent, null or empty -> None)."""
    if not isinstance(obj, Mapping):
        raise MalformedResponse(venue, f"expected an object with {key!r}")
    value = obj.get(key)
    if value is None or value == "":
        return None
    return dec(venue, value, key)


def positive(venue: str, value: Decimal, name: str) -> Decimal:
    """`value` if > 0, else MalformedResponse."""
    if value <= 0:
        raise MalformedResponse(venue, f"{name}: must be > 0, got {value}")
    return value


def non_negative(venue: str, value: Decimal, name: str) -> Decimal:
    """`value` if >= 0, else MalformedResponse."""
    if value < 0:
        raise MalformedResponse(venue, f"{name}: must be >= 0, got {value}")
    return value


def text(venue: str, obj: Any, key: str) -> str:
    """A required string field."""
    value = field(venue, obj, key)
    if not isinstance(value, str):
        raise MalformedResponse(venue, f"{key}: expected a string, got {type(value).__name__}")
    return value


def integer(venue: str, value: Any, name: str) -> int:
    """An integer from a JSON number or a digit string."""
    if isinstance(value, bool):
        raise MalformedResponse(venue, f"{name}: expected an integer, got bool")
    if isinstance(value, int):
        return value
    # isascii: str.isdigit() is also true for "²" and other digits int() refuses.
    digits = value.removeprefix("-") if isinstance(value, str) else ""
    if digits.isascii() and digits.isdigit() and len(value) < 40:
        return int(value)
    raise MalformedResponse(venue, f"{name}: expected an integer, got {str(value)[:40]!r}")


def _from_epoch(venue: str, value: Any, name: str, units_per_second: int) -> datetime:
    count = integer(venue, value, name)
    try:
        return datetime.fromtimestamp(count / units_per_second, UTC)
    except (OverflowError, OSError, ValueError):
        raise MalformedResponse(venue, f"{name}: {count} is not a time") from None


def from_millis(venue: str, value: Any, name: str) -> datetime:
    """UTC datetime from epoch milliseconds."""
    return _from_epoch(venue, value, name, 1000)


def from_micros(venue: str, value: Any, name: str) -> datetime:
    """UTC datetime from epoch microseconds."""
    return _from_epoch(venue, value, name, 1_000_000)


def from_seconds(venue: str, value: Any, name: str) -> datetime:
    """UTC datetime from epoch seconds given as an integer or a decimal string ("1727701319.73488")."""
    if isinstance(value, float) and not isinstance(value, bool):
        value = repr(value)  # a time, not money: a JSON float is acceptable here
    seconds = dec(venue, value, name)
    try:
        return datetime.fromtimestamp(float(seconds), UTC)
    except (OverflowError, OSError, ValueError):
        raise MalformedResponse(venue, f"{name}: {seconds} is not a time") from None


def from_naive_iso(venue: str, value: Any, name: str) -> datetime:
    """UTC datetime from an ISO string without offset (taken as UTC, as the venues send them)."""
    if not isinstance(value, str):
        raise MalformedResponse(venue, f"{name}: expected an ISO time string")
    try:
        parsed = datetime.fromisoformat(value.removesuffix("Z"))
    except ValueError:
        raise MalformedResponse(venue, f"{name}: {value[:40]!r} is not an ISO time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def plain(value: Decimal) -> str:
    """A Decimal as the fixed-point string venues expect (never an exponent)."""
    return format(value, "f")
