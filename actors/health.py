"""What `health` answers: facts the main loop records (its own heartbeat, the last database write that
committed, how reconciliation is going) and the verdict drawn from them. Pure apart from a lock; the times
are monotonic seconds handed in by the caller, so tests drive it without threads or sleeps."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

# The main loop turns every 0.1 s; 10 s without a turn means it is stuck (a hung call, a deadlock).
LOOP_MAX_AGE_S = 10.0
# The loop proves the database takes a write every HEARTBEAT_EVERY_S; three missed proofs are a failure.
HEARTBEAT_EVERY_S = 5.0
WRITE_MAX_AGE_S = 3 * HEARTBEAT_EVERY_S
# A database that has taken no write for this long (a lock never released, a server gone) is treated as failed:
# the process exits and its restart runs the start-up check.
WRITE_FATAL_AGE_S = 12 * HEARTBEAT_EVERY_S
# Reconciliation retries every few seconds while a venue is briefly down; this many failures in a row is a
# condition a person must look at (a corrupt database, a venue refusing our keys).
RECONCILE_FAILURES_UNHEALTHY = 5
HEARTBEAT_KEY = "engine.heartbeat"  # the meta row the heartbeat rewrites


@dataclass
class HealthTracker:
    """Records liveness facts as they happen and judges them on request. Thread-safe."""

    loop_max_age_s: float = LOOP_MAX_AGE_S
    write_max_age_s: float = WRITE_MAX_AGE_S
    reconcile_failures_unhealthy: int = RECONCILE_FAILURES_UNHEALTHY
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _started: float | None = None
    _last_step: float | None = None
    _last_write: float | None = None
    _write_error: str | None = None
    _reconcile_failures: int = 0
    _reconcile_error: str | None = None

    def started(self, now: float) -> None:
        """The engine started at `now`: the grace period for the first write begins."""
        with self._lock:
            self._started = self._last_step = now

    def stepped(self, now: float) -> None:
        """The main loop completed a turn."""
        with self._lock:
            self._last_step = now

    def wrote(self, now: float) -> None:
        """A probe write committed."""
        with self._lock:
            self._last_write, self._write_error = now, None

    def write_age(self, now: float) -> float:
        """Seconds since the last committed write (or since start)."""
        with self._lock:
            since = self._last_write if self._last_write is not None else self._started
            return 0.0 if since is None else now - since

    def write_failed(self, error: str) -> None:
        """A write was refused by the database."""
        with self._lock:
            self._write_error = error

    def reconcile_failed(self, error: str) -> int:
        """One more reconciliation failure in a row; returns how many."""
        with self._lock:
            self._reconcile_failures += 1
            self._reconcile_error = error
            return self._reconcile_failures

    @property
    def reconcile_failures(self) -> int:
        """Reconciliation failures in a row so far."""
        with self._lock:
            return self._reconcile_failures

    def reconciled(self) -> None:
        """Reconciliation completed."""
        with self._lock:
            self._reconcile_failures, self._reconcile_error = 0, None

    def problems(self, now: float) -> list[str]:
        """Why the process is unhealthy at `now` (empty when healthy)."""
        with self._lock:
            found: list[str] = []
            if self._last_step is None:
                found.append("the engine has not started")
            elif now - self._last_step > self.loop_max_age_s:
                found.append(f"the main loop has not turned for {now - self._last_step:.0f}s")
            if self._write_error is not None:
                found.append(f"the database refuses writes: {self._write_error}")
            since = self._last_write if self._last_write is not None else self._started
            if since is not None and now - since > self.write_max_age_s:
                found.append(f"no database write has committed for {now - since:.0f}s")
            if self._reconcile_failures >= self.reconcile_failures_unhealthy:
                found.append(
                    f"reconciliation failed {self._reconcile_failures} times in a row: {self._reconcile_error}"
                )
            return found
