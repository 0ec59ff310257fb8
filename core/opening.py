"""How an open ends, decided from its legs' orders alone (no I/O): OPEN, trim the larger leg, roll back, or
NAKED. The coordinator feeds it the rows its orders' outcomes leave and carries the verdict out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from core.domain import PairState, Side
from core.ledger import OrderLike, is_unresolved, net_quantity

UNKNOWN_LEG = "the outcome of a leg is unknown after lookups"


@dataclass(frozen=True, slots=True)
class Open:
    """Both legs hold the same quantity: the pair is OPEN at it."""

    quantity: Decimal


@dataclass(frozen=True, slots=True)
class Trim:
    """Both legs hold something, unequally: reduce the larger one (`side`) by `quantity`, then decide again."""

    side: Side
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class RollBack:
    """A leg holds nothing: flatten the legs that hold something (`sides`, maybe none), then FAILED."""

    sides: tuple[Side, ...]


@dataclass(frozen=True, slots=True)
class Naked:
    """A leg may be open without its hedge and nothing more can be done here: NAKED, from `expected`."""

    expected: PairState
    reason: str


Verdict = Open | Trim | RollBack | Naked


def held(books: Mapping[Side, Sequence[OrderLike]]) -> dict[Side, Decimal]:
    """What each leg holds by its orders."""
    return {side: net_quantity(orders) for side, orders in books.items()}


def conclude(books: Mapping[Side, Sequence[OrderLike]], *, trimmed: bool = False) -> Verdict:
    """The verdict on an open from each leg's orders (long and short). A leg whose orders are not all settled
    leaves the pair NAKED: neither rolled back nor trimmed on a guess. After a trim (`trimmed`), legs that are
    still unequal leave it NAKED too."""
    if not trimmed and any(is_unresolved(o) for orders in books.values() for o in orders):
        return Naked(PairState.OPENING, UNKNOWN_LEG)
    q = held(books)
    long_q, short_q = q[Side.LONG], q[Side.SHORT]
    if long_q > 0 and short_q > 0:
        if long_q == short_q:
            return Open(long_q)
        if trimmed:
            reason = f"legs filled unequally ({long_q} vs {short_q}) and trimming the larger one failed"
            return Naked(PairState.OPENING, reason)
        return Trim(Side.LONG if long_q > short_q else Side.SHORT, abs(long_q - short_q))
    return RollBack(tuple(side for side in (Side.LONG, Side.SHORT) if q[side] > 0))
