"""Parameter checks shared by the simulators: each raises ParamError, which a venue answers with its 4xx body."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, overload

INT64_MAX = 2**63 - 1


class ParamError(ValueError):
    """A request parameter is missing or malformed (the venue answers 400 with its error body)."""


@overload
def text(params: Mapping[str, Any], name: str, *, required: Literal[True]) -> str: ...
@overload
def text(params: Mapping[str, Any], name: str, *, required: bool = False) -> str | None: ...
def text(params: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    """A string parameter; None when absent and not required."""
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise ParamError(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise ParamError(f"{name} must be a string")
    return value


@overload
def integer(
    params: Mapping[str, Any], name: str, *, default: int, low: int = 0, high: int = INT64_MAX, required: bool = False
) -> int: ...
@overload
def integer(
    params: Mapping[str, Any], name: str, *, default: None = None, low: int = 0, high: int = INT64_MAX,
    required: Literal[True],
) -> int: ...  # fmt: skip
@overload
def integer(
    params: Mapping[str, Any], name: str, *, default: int | None = None, low: int = 0, high: int = INT64_MAX,
    required: bool = False,
) -> int | None: ...  # fmt: skip
def integer(
    params: Mapping[str, Any], name: str, *, default: int | None = None, low: int = 0, high: int = INT64_MAX,
    required: bool = False,
) -> int | None:  # fmt: skip
    """An integer parameter (JSON number or decimal digits) within [low, high]; an empty one is malformed."""
    value = params.get(name)
    if value is None:
        if required:
            raise ParamError(f"{name} is required")
        return default
    if isinstance(value, bool):
        raise ParamError(f"{name} must be an integer")
    if isinstance(value, str):
        body = value[1:] if value[:1] == "-" else value
        if not (body.isascii() and body.isdigit()) or len(body) > 20:  # "" included
            raise ParamError(f"{name} must be an integer")
        value = int(value)
    if not isinstance(value, int):
        raise ParamError(f"{name} must be an integer")
    if not low <= value <= high:
        raise ParamError(f"{name} must be within {low}..{high}")
    return value


@overload
def decimal(params: Mapping[str, Any], name: str, *, required: Literal[True], positive: bool = False) -> Decimal: ...
@overload
def decimal(
    params: Mapping[str, Any], name: str, *, required: bool = False, positive: bool = False
) -> Decimal | None: ...
def decimal(params: Mapping[str, Any], name: str, *, required: bool = False, positive: bool = False) -> Decimal | None:
    """A decimal parameter given as a string or number; finite, and > 0 when `positive`; an empty one is malformed."""
    value = params.get(name)
    if value is None:
        if required:
            raise ParamError(f"{name} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or len(str(value)) > 40:
        raise ParamError(f"{name} must be a decimal")
    try:
        out = Decimal(str(value))
    except InvalidOperation:
        raise ParamError(f"{name} must be a decimal") from None
    if not out.is_finite() or (positive and out <= 0):
        raise ParamError(f"{name} must be a {'positive ' if positive else ''}decimal")
    return out


def boolean(params: Mapping[str, Any], name: str, *, default: bool = False) -> bool:
    """A boolean parameter (JSON true/false, or "true"/"false" in a query)."""
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise ParamError(f"{name} must be true or false")


@overload
def choice(params: Mapping[str, Any], name: str, allowed: Iterable[str], *, default: str) -> str: ...
@overload
def choice(params: Mapping[str, Any], name: str, allowed: Iterable[str], *, default: None = None) -> str | None: ...
def choice(params: Mapping[str, Any], name: str, allowed: Iterable[str], *, default: str | None = None) -> str | None:
    """A parameter that must be one of `allowed`."""
    value = params.get(name)
    if value is None:
        return default
    options = tuple(allowed)
    if value not in options:
        raise ParamError(f"{name} must be one of {', '.join(options)}")
    return str(value)


def choices(values: list[str], name: str, allowed: Iterable[str]) -> list[str]:
    """A repeatable query parameter whose every value must be one of `allowed`."""
    options = tuple(allowed)
    for value in values:
        if value not in options:
            raise ParamError(f"{name} must be one of {', '.join(options)}")
    return values


def page(items: list[Any], offset: int | None, limit: int | None) -> list[Any]:
    """items[offset : offset + limit]."""
    start = offset or 0
    return items[start : start + limit] if limit is not None else items[start:]
