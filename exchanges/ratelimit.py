"""Request pacing per venue: a token bucket that also honours a venue's 429 retry-after."""

from __future__ import annotations

import threading

from core.clock import Clock


class RateLimiter:
    """Allows `rate` requests per second with bursts of `burst`; `penalize()` blocks everyone for a while."""

    def __init__(self, clock: Clock, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self._clock = clock
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last = clock.monotonic()
        self._blocked_until = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping (on the clock) until one is free; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock.monotonic()
                self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
                self._last = now
                delay = max(0.0, self._blocked_until - now)
                if delay == 0 and self._tokens >= 1:
                    self._tokens -= 1
                    return waited
                if delay == 0:
                    delay = (1 - self._tokens) / self._rate
            self._clock.sleep(delay)
            waited += delay

    def penalize(self, seconds: float) -> None:
        """No request leaves before `seconds` from now (a 429's retry-after)."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock.monotonic() + seconds)
            self._tokens = 0.0
