"""Hibachi nonces: microsecond timestamps on the venue's clock, strictly increasing across threads."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from core.clock import Clock

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


class NonceSource:
    """Unique, increasing µs nonces within the server's window: local time plus the measured offset."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._offset_us = 0
        self._last = 0

    def local_us(self) -> int:
        """Our clock in epoch microseconds (exact: no float rounding)."""
        return (self._clock.now() - _EPOCH) // _MICRO

    def server_us(self) -> int:
        """Our estimate of the venue's clock in epoch microseconds."""
        return self.local_us() + self._offset_us

    def set_offset_us(self, offset_us: int) -> None:
        """Adopt a measured offset (server - local). Nonces never go backwards even if it shrinks."""
        with self._lock:
            self._offset_us = offset_us

    @property
    def offset_us(self) -> int:
        """The offset in use."""
        return self._offset_us

    def next(self) -> int:
        """A fresh nonce: the server time now, or one more than the last nonce if that is not larger."""
        with self._lock:
            value = max(self.local_us() + self._offset_us, self._last + 1)
            self._last = value
            return value

    def age_s(self, nonce: int) -> float:
        """Seconds between `nonce` and the venue's clock now (negative: in the future)."""
        return (self.server_us() - nonce) / 1_000_000
