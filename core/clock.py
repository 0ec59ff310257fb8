"""Clocks: the real one, and a fake one that tests advance by hand.

Everything that timestamps or waits takes a Clock, so tests never race against wall time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """What the engine needs from time: a UTC wall clock, a monotonic clock and a sleep."""

    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for ages and timeouts)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for `seconds`."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Current UTC time."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """time.monotonic()."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """time.sleep(), ignoring negative durations."""
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock that only moves when a test calls advance() (or step_wall()); sleepers wake when their deadline
    passes."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2026, 1, 1, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)
        self._mono = 1000.0
        self._cond = threading.Condition()
        self._deadlines: dict[int, float] = {}  # thread ident -> its deadline, per thread blocked in sleep()

    def now(self) -> datetime:
        """The fake UTC time."""
        with self._cond:
            return self._now

    def monotonic(self) -> float:
        """The fake monotonic time, moved by advance() alone."""
        with self._cond:
            return self._mono

    def sleep(self, seconds: float) -> None:
        """Block until another thread advances the clock by at least `seconds`."""
        with self._cond:
            deadline = self._mono + max(seconds, 0.0)
            ident = threading.get_ident()
            self._deadlines[ident] = deadline
            self._cond.notify_all()  # lets wait_for_sleepers() see the new sleeper
            try:
                while self._mono < deadline:
                    self._cond.wait()
            finally:
                del self._deadlines[ident]

    def advance(self, seconds: float) -> None:
        """Move both clocks forward and wake every sleeper whose deadline has passed."""
        if seconds < 0:
            raise ValueError("time does not go backwards")
        with self._cond:
            self._mono += seconds
            self._now += timedelta(seconds=seconds)
            self._cond.notify_all()

    def step_wall(self, seconds: float) -> None:
        """Step the wall clock alone, either way (an NTP correction, a hand-set clock); monotonic time and
        sleepers are untouched, as on a real host."""
        with self._cond:
            self._now += timedelta(seconds=seconds)

    @contextmanager
    def ticking(self, every_real_s: float = 0.01, step_s: float = 0.5) -> Iterator[None]:
        """Advance by `step_s` every `every_real_s` real seconds for the duration (a stop, say, that may wait on
        the clock while no driver moves it)."""
        done = threading.Event()

        def tick() -> None:
            while not done.wait(every_real_s):
                self.advance(step_s)

        ticker = threading.Thread(target=tick, name="fake-clock-ticking", daemon=True)
        ticker.start()
        try:
            yield
        finally:
            done.set()
            ticker.join()

    def sleepers(self) -> int:
        """How many threads are blocked in sleep(): lets a test wait for a thread to park, without races."""
        with self._cond:
            return len(self._deadlines)

    def sleepers_due(self) -> bool:
        """Whether a sleeper's deadline has passed but it has not woken yet: work still to come, so a driver of
        fake time knows the program is not idle."""
        with self._cond:
            return any(d <= self._mono for d in self._deadlines.values())

    def asleep(self) -> frozenset[int]:
        """The threads (idents) blocked in sleep() whose deadline is still ahead: told by the clock itself, so a
        driver of fake time need not inspect other threads' stacks to know they wait for it."""
        with self._cond:
            return frozenset(t for t, d in self._deadlines.items() if d > self._mono)

    def wait_for_sleepers(self, count: int, timeout: float = 5.0) -> bool:
        """Block (in real time) until `count` threads sleep on this clock; False on timeout."""
        end = time.monotonic() + timeout
        with self._cond:
            while len(self._deadlines) < count:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True
