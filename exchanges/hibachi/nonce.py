"""Hibachi nonces: microsecond timestamps on the venue's clock, never repeated, back in the window after a resync.

What the venue requires (spec §4): a nonce within ±15 s of server time, unique per account (a reused one is
refused). The spec does not say a nonce must exceed the last one; we keep them increasing anyway (the SDK's
advice), with one deliberate exception, `rewind()`:

A nonce issued while our clock read ahead of the venue's by more than the window (a wall-clock step forward,
or one back after an offset was measured) lies beyond the far edge of the venue's window. The venue can never
have accepted it: its clock has never read later than it does now. A floor left up there would keep every
later nonce outside the window until the venue's clock caught up, so after a resync the floor drops to the
highest nonce the venue *may* have accepted. Nonces therefore still increase across everything the venue may
have accepted, and the ones issued beyond the window are remembered and skipped, so no value is issued twice.
"""

from __future__ import annotations

import threading
from bisect import bisect_right, insort
from datetime import UTC, datetime, timedelta

from core.clock import Clock

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
# Nonces remembered for rewind() and for skipping. Every refusal triggers a resync, so only a handful are ever
# issued beyond the window between two rewinds; a thousand is ample (see _remember() for what happens beyond).
HISTORY = 1024


class NonceSource:
    """Unique µs nonces within the server's window: local time plus the measured offset, above a floor."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._offset_us = 0
        self._last = 0  # the floor: the next nonce is above it
        self._issued: list[int] = []  # the last HISTORY nonces issued, sorted
        self._issued_set: set[int] = set()
        self._forgotten = 0  # every nonce issued and no longer in _issued is at or below this

    def local_us(self) -> int:
        """Our clock in epoch microseconds (exact: no float rounding)."""
        return (self._clock.now() - _EPOCH) // _MICRO

    def server_us(self) -> int:
        """Our estimate of the venue's clock in epoch microseconds."""
        return self.local_us() + self._offset_us

    def set_offset_us(self, offset_us: int) -> None:
        """Adopt a measured offset (server - local). Alone it never lowers the floor: see rewind()."""
        with self._lock:
            self._offset_us = offset_us

    @property
    def offset_us(self) -> int:
        """The offset in use."""
        return self._offset_us

    def next(self) -> int:
        """A fresh nonce: the server time now, or just above the floor if that is not larger, never one issued
        before."""
        with self._lock:
            value = max(self.local_us() + self._offset_us, self._last + 1)
            while value in self._issued_set:  # only after a rewind: values issued beyond the window back then
                value += 1
            self._last = value
            self._remember(value)
            return value

    def _remember(self, value: int) -> None:
        insort(self._issued, value)
        self._issued_set.add(value)
        if len(self._issued) > HISTORY:
            dropped = self._issued.pop(0)
            self._issued_set.discard(dropped)
            self._forgotten = dropped
            # A forgotten value could no longer be skipped, so the floor never goes below it (at worst that
            # leaves nonces outside the window, which only more than HISTORY refusals without a resync can do).
            self._last = max(self._last, dropped)

    def rewind(self, window_us: int, margin_us: int = 0) -> bool:
        """After a resync: drop the floor to the highest nonce the venue may have accepted, if it lies beyond
        the window's far edge (server time + window + margin for the offset's error). True if it moved."""
        with self._lock:
            ceiling = self.local_us() + self._offset_us + window_us + margin_us
            if self._last <= ceiling:
                return False
            below = bisect_right(self._issued, ceiling)
            floor = self._issued[below - 1] if below else self._forgotten
            if floor >= self._last:
                return False
            self._last = floor
            return True

    def age_s(self, nonce: int) -> float:
        """Seconds between `nonce` and the venue's clock now (negative: in the future)."""
        return (self.server_us() - nonce) / 1_000_000
