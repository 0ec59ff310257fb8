"""The simulated tape: market trades made by other traders, and the queue a resting order waits in.

Model. The tape watches each market's touch (best bid, best ask) at every engine tick. Between two ticks:

- if the best ask rose, buyers lifted the asks the book no longer shows: one print at every tick-grid
  price p with old ask <= p < new ask;
- if the best bid fell, sellers hit the bids the book no longer shows: one print at every price p with
  new bid < p <= old bid;
- otherwise nothing traded. Several price steps between two ticks count as one move (their path is lost).

Each print's volume is a whole number of lots between `volume_low` and `volume_high` times the market's
displayed level size, drawn from a generator seeded by (seed, symbol, sweep number, price): the same seed and
the same sequence of ticks give the same tape. A run of prints is kept as a `Sweep` (its range and a key),
never as a list, so a jump of thousands of ticks costs nothing.

Queue. A resting order at P starts behind the displayed size at P in the book at the moment it rests (zero
when P improves the touch or lies beyond the displayed levels). Against a resting buy at P (a sell is the
mirror image):
- a print strictly below P means the whole level at P traded: the rest of the order fills at P;
- a print at P by a seller first consumes the volume ahead of the order, then fills the order with what is
  left (a buyer's print at P took an ask, not our bid);
- a book whose best ask lies below P fills it too (the market went through it; with the symmetric
  synthetic book the tape trades through P first, so this only matters for a live book or after a restore,
  when the tape has not seen the move). A best ask at P only touches it: no fill.
Simplification: each of our resting orders sees every print whole; our own orders at one price do not queue
behind one another, and nobody ahead of us cancels.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from core.domain import Side

Touch = tuple[Decimal | None, Decimal | None]  # (best bid, best ask); None for an empty side


@dataclass(frozen=True)
class Sweep:
    """A run of prints at every tick from `low` to `high` (inclusive), made by one aggressor side."""

    symbol: str
    aggressor: Side  # LONG: buyers lifted the asks; SHORT: sellers hit the bids
    low: Decimal
    high: Decimal
    tick: Decimal
    key: str  # seeds the volume of each print

    def prints_at(self, price: Decimal) -> bool:
        """Whether one of the prints is at exactly `price`."""
        return self.low <= price <= self.high and (price - self.low) % self.tick == 0


@dataclass(frozen=True)
class RestingFill:
    """What the tape of one tick did to one resting order: the quantity that fills and the queue left ahead."""

    quantity: Decimal
    ahead: Decimal


class Tape:
    """Per market: the touch last seen, and the sweeps of prints since then."""

    def __init__(self, seed: str, volume_low: Decimal = Decimal("0.2"), volume_high: Decimal = Decimal("1.6")) -> None:
        self._seed = seed
        self._volume_low = volume_low
        self._volume_high = volume_high
        self._touch: dict[str, Touch] = {}
        self._sweeps = 0

    def watch(self, symbol: str, touch: Touch) -> None:
        """Start measuring moves of `symbol` from `touch` (no prints), unless already watching it."""
        self._touch.setdefault(symbol, touch)

    def forget(self, keep: set[str]) -> None:
        """Stop watching markets outside `keep`: with no order resting there, their prints matter to nobody."""
        for symbol in [s for s in self._touch if s not in keep]:
            del self._touch[symbol]

    def step(self, symbol: str, touch: Touch, tick: Decimal) -> list[Sweep]:
        """The sweeps from the last touch seen to `touch`, which becomes the new one (none on a first look)."""
        old = self._touch.get(symbol)
        self._touch[symbol] = touch
        if old is None:
            return []
        (old_bid, old_ask), (new_bid, new_ask) = old, touch
        sweeps: list[Sweep] = []
        if old_ask is not None and new_ask is not None and new_ask > old_ask:
            sweeps.append(self._sweep(symbol, Side.LONG, old_ask, new_ask - tick, tick))
        if old_bid is not None and new_bid is not None and new_bid < old_bid:
            sweeps.append(self._sweep(symbol, Side.SHORT, new_bid + tick, old_bid, tick))
        return [s for s in sweeps if s.low <= s.high]

    def _sweep(self, symbol: str, aggressor: Side, low: Decimal, high: Decimal, tick: Decimal) -> Sweep:
        self._sweeps += 1
        return Sweep(symbol, aggressor, low, high, tick, f"{self._seed}:{symbol}:{self._sweeps}")

    def volume(self, sweep: Sweep, price: Decimal, level_size: Decimal, lot: Decimal) -> Decimal:
        """The volume of the print at `price` in `sweep`: seeded, whole lots, at least one lot."""
        low = max(1, int((level_size * self._volume_low / lot).to_integral_value(rounding=ROUND_DOWN)))
        high = max(low, int((level_size * self._volume_high / lot).to_integral_value(rounding=ROUND_DOWN)))
        # A str seed is hashed with SHA-512 by random.Random: stable across processes, unlike hash().
        draw = random.Random(f"{sweep.key}:{price}").randint(low, high)
        return draw * lot


def queue_ahead(
    side: Side, price: Decimal, bids: list[tuple[Decimal, Decimal]], asks: list[tuple[Decimal, Decimal]]
) -> Decimal:
    """The displayed size at `price` on the order's own side of the book: what rests there before it."""
    for level_price, size in bids if side is Side.LONG else asks:
        if level_price == price:
            return size
    return Decimal(0)


def resting_fill(
    tape: Tape,
    *,
    side: Side,
    price: Decimal,
    remaining: Decimal,
    ahead: Decimal,
    sweeps: list[Sweep],
    opposite_touch: Decimal | None,
    level_size: Decimal,
    lot: Decimal,
) -> RestingFill:
    """How much of a resting order at `price` this tick's sweeps (or an opposite touch beyond it) fill."""
    buy = side is Side.LONG
    if opposite_touch is not None and (opposite_touch < price if buy else opposite_touch > price):
        return RestingFill(remaining, Decimal(0))
    filled = Decimal(0)
    for sweep in sweeps:
        if (sweep.low < price) if buy else (sweep.high > price):
            return RestingFill(remaining, Decimal(0))  # traded through: the whole level at `price` went
        if sweep.aggressor is not side and sweep.prints_at(price):  # only takers from the other side reach it
            volume = tape.volume(sweep, price, level_size, lot)
            consumed = min(ahead, volume)
            ahead -= consumed
            filled += min(volume - consumed, remaining - filled)
    return RestingFill(filled, ahead)
