"""Whether the venues hold what the pairs hold, per venue and symbol, judged over several readings. Pure.

The venues are read between two readings of the database (`before`, `after`): a symbol that was mid-trade at
either, or whose expectation changed in between, is not judged that time, since the venue may have been read
on the other side of that trade. A difference is acted on only once it has lasted `threshold` readings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from core.domain import Side, Venue

Key = tuple[Venue, str]
ZERO = Decimal(0)


class VenuePosition(Protocol):
    """What the comparison reads of one venue position (exchanges.base.Position has it)."""

    @property
    def symbol(self) -> str: ...  # noqa: D102
    @property
    def side(self) -> Side: ...  # noqa: D102
    @property
    def quantity(self) -> Decimal: ...  # noqa: D102
    @property
    def entry_price(self) -> Decimal: ...  # noqa: D102


@dataclass(frozen=True, slots=True)
class Expected:
    """One reading of the database: the signed quantity the pairs hold per (venue, symbol), the keys that are
    mid-trade, and the OPEN or CLOSING pairs holding each key (their ids)."""

    held: Mapping[Key, Decimal] = field(default_factory=dict)
    moving: frozenset[Key] = frozenset()
    holders: Mapping[Key, tuple[int, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Difference:
    """A difference that lasted: the venue holds `held` (signed), the pairs `expected`."""

    venue: Venue
    symbol: str
    expected: Decimal
    held: Decimal
    entry_price: Decimal | None
    holders: tuple[int, ...] = ()

    @property
    def key(self) -> Key:
        """(venue, symbol)."""
        return self.venue, self.symbol

    @property
    def leg_shrank(self) -> bool:
        """Our legs hold more than the venue, same direction: liquidated, or closed outside the farmer. Anything
        else (more than ours, the other way round, nothing of ours at all) is a position nobody accounts for."""
        return self.expected != 0 and self.held * self.expected >= 0 and abs(self.held) < abs(self.expected)

    @property
    def unaccounted(self) -> Decimal:
        """The signed quantity the venue holds beyond what the pairs hold."""
        return self.held - self.expected


@dataclass(frozen=True, slots=True)
class Comparison:
    """The outcome of one reading: keys that agree now, differences that lasted, and the counters to keep."""

    agreed: tuple[Key, ...]
    lasting: tuple[Difference, ...]
    counts: dict[Key, int]


def net_by_symbol(items: Iterable[VenuePosition]) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """A venue's positions as signed quantities per symbol (+ long), and an entry price per symbol."""
    net: dict[str, Decimal] = {}
    entry: dict[str, Decimal] = {}
    for p in items:
        net[p.symbol] = net.get(p.symbol, ZERO) + p.side.sign * p.quantity
        entry[p.symbol] = p.entry_price
    return net, entry


def compare_positions(
    venues: Mapping[Venue, Iterable[VenuePosition] | None],
    before: Expected,
    after: Expected,
    counts: Mapping[Key, int],
    threshold: int,
) -> Comparison:
    """Compare each readable venue's positions with what the pairs hold (`after`), counting how many readings in
    a row each difference has lasted (`counts`, from the previous call). A venue that could not be read (None)
    keeps its counters as they are."""
    moving = (
        after.moving
        | before.moving
        | {k for k in before.held.keys() | after.held.keys() if before.held.get(k, ZERO) != after.held.get(k, ZERO)}
    )
    kept = dict(counts)
    agreed: list[Key] = []
    lasting: list[Difference] = []
    for venue, items in venues.items():
        if items is None:
            continue
        actual, entry = net_by_symbol(items)
        flagged = {s for (v, s) in counts if v is venue}  # a flagged symbol is judged until it clears
        for symbol in sorted({s for (v, s) in after.held if v is venue} | set(actual) | flagged):
            key = (venue, symbol)
            want, have = after.held.get(key, ZERO), actual.get(symbol, ZERO)
            if want == have:
                kept.pop(key, None)
                agreed.append(key)
            elif key in moving:
                kept[key] = min(kept.get(key, 0), threshold - 1)  # needs a fresh reading
            else:
                kept[key] = kept.get(key, 0) + 1
                if kept[key] >= threshold:
                    lasting.append(Difference(venue, symbol, want, have, entry.get(symbol), after.holders.get(key, ())))
    return Comparison(tuple(agreed), tuple(lasting), kept)
