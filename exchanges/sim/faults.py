"""Fault injection shared by the simulators: what the next requests, orders and feeds should suffer."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class InjectedReject:
    """A venue error to answer an order with."""

    code: str | int
    message: str
    http_status: int = 400
    reduce_only: bool | None = None  # None: any order; True: only reduce-only orders (closes, rollbacks)


@dataclass(frozen=True)
class InjectedHttpError:
    """A whole-request failure (5xx, 429) to answer with."""

    status: int
    retry_after: float | None = None


class Faults:
    """Counters of pending faults; each `take_*` consumes one. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        """Remove every pending fault."""
        with self._lock:
            self._rejects: list[InjectedReject] = []
            self._http: list[InjectedHttpError] = []
            self._blackholes = 0
            self._partials: list[Decimal] = []
            self.latency_s = 0.0

    def reject_orders(
        self, count: int, code: str | int, message: str, http_status: int = 400, *, reduce_only: bool | None = None
    ) -> None:
        """Refuse the next `count` orders (or only reduce-only ones) with this venue error."""
        with self._lock:
            self._rejects.extend([InjectedReject(code, message, http_status, reduce_only)] * count)

    def fail_requests(self, count: int, status: int, retry_after: float | None = None) -> None:
        """Answer the next `count` requests (any path but the admin one) with `status`."""
        with self._lock:
            self._http.extend([InjectedHttpError(status, retry_after)] * count)

    def blackhole_orders(self, count: int) -> None:
        """Carry out the next `count` orders but never answer them (the client times out)."""
        with self._lock:
            self._blackholes += count

    def partial_fills(self, count: int, fraction: Decimal) -> None:
        """Fill only `fraction` of the next `count` orders that would fill; the rest expires."""
        with self._lock:
            self._partials.extend([fraction] * count)

    def set_latency(self, seconds: float) -> None:
        """Delay every answer by `seconds`."""
        with self._lock:
            self.latency_s = max(0.0, seconds)

    def take_reject(self, reduce_only: bool = False) -> InjectedReject | None:
        """Consume the first pending rejection that applies to an order of this kind."""
        with self._lock:
            for i, reject in enumerate(self._rejects):
                if reject.reduce_only is None or reject.reduce_only == reduce_only:
                    return self._rejects.pop(i)
            return None

    def take_http_error(self) -> InjectedHttpError | None:
        """Consume one pending request failure."""
        with self._lock:
            return self._http.pop(0) if self._http else None

    def take_blackhole(self) -> bool:
        """Consume one pending never-answer."""
        with self._lock:
            if self._blackholes:
                self._blackholes -= 1
                return True
            return False

    def take_partial(self) -> Decimal | None:
        """Consume one pending partial fill."""
        with self._lock:
            return self._partials.pop(0) if self._partials else None

    def pending(self) -> dict[str, int]:
        """Counts of what is pending (for the admin endpoint)."""
        with self._lock:
            return {
                "rejects": len(self._rejects),
                "http_errors": len(self._http),
                "blackholes": self._blackholes,
                "partial_fills": len(self._partials),
            }
