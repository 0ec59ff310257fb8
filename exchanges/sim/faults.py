"""Fault injection shared by the simulators: what the next requests, orders and feeds should suffer.

A fault is *pending* from injection until it alters a request, a reply or a feed; only then is it *taken*
(`Faults.taken`). Chaos runs report taken faults: a fault that never met a request tested nothing.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from core.clock import Clock, SystemClock


@dataclass(frozen=True)
class InjectedReject:
    """A venue error to answer an order with."""

    code: str | int
    message: str
    http_status: int = 400
    reduce_only: bool | None = None  # None: any order; True: only reduce-only orders (closes, rollbacks)

    @property
    def label(self) -> str:
        """Its name among taken faults."""
        return {None: "reject", True: "reject_close", False: "reject_open"}[self.reduce_only]


@dataclass(frozen=True)
class InjectedHttpError:
    """A whole-request failure (5xx, 429) to answer with."""

    status: int
    retry_after: float | None = None

    @property
    def label(self) -> str:
        """Its name among taken faults."""
        return "http_429" if self.status == 429 else "http_5xx" if self.status >= 500 else f"http_{self.status}"


@dataclass(frozen=True)
class InjectedDelay:
    """Hold a request `seconds` (venue clock) after it arrived, then carry it out and answer nothing.

    The client has given up by then (a timeout: the reply is lost) while the venue still executes what it
    received in time. The venue checks the request's signed window or nonce against the *arrival* time, as
    a real venue's gateway does (see `ArrivalClock`); `seconds` should stay below that window, since a venue
    that executed a request after its window would break the promise a client's lost-reply wait relies on.
    """

    seconds: float
    method: str | None = "POST"  # None: any method
    path: str | None = None  # None: any path


class Faults:
    """Pending faults; each `take_*` consumes one and counts it as taken. Thread-safe."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._lock = threading.Lock()
        self.clock: Clock = clock or SystemClock()
        self.taken: Counter[str] = Counter()
        # Private (account) stream servers register here how to drop their connections (see drop_account_streams).
        self.account_stream_droppers: list[Callable[[], int]] = []
        self.clear()

    def clear(self) -> None:
        """Remove every pending fault (taken counts stay)."""
        with self._lock:
            self._rejects: list[InjectedReject] = []
            self._http: list[InjectedHttpError] = []
            self._blackholes = 0
            self._partials: list[Decimal] = []
            self._delays: list[InjectedDelay] = []
            self.latency_s = 0.0
            self.private_silent = False  # private stream events are discarded while the socket stays open
            self._reorders = 0
            self._post_only_expiries = 0
            self._resting_partials: list[Decimal] = []
            self._resting_partial_at: object = None  # the engine instant the last one was taken at
            self._cancel_fills: list[Decimal] = []

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

    def delay_requests(self, count: int, seconds: float, method: str | None = "POST", path: str | None = None) -> None:
        """Hold the next `count` matching requests `seconds` before the venue carries them out, unanswered."""
        if seconds < 0:
            raise ValueError("a delay cannot be negative")
        with self._lock:
            self._delays.extend([InjectedDelay(seconds, method, path)] * count)

    def expire_post_only(self, count: int) -> None:
        """Expire the next `count` post-only orders as if they would have taken (a post-only refusal storm)."""
        with self._lock:
            self._post_only_expiries += count

    def take_post_only_expiry(self) -> bool:
        """Consume one pending post-only expiry (asked for post-only orders only)."""
        with self._lock:
            if self._post_only_expiries:
                self._post_only_expiries -= 1
                self.taken["post_only_storm"] += 1
                return True
            return False

    def partial_fill_resting(self, count: int, fraction: Decimal) -> None:
        """At each of the next `count` engine instants that find limit orders resting, fill `fraction` of what
        each still wants (at least one step) as a maker, whatever the tape printed."""
        with self._lock:
            self._resting_partials.extend([fraction] * count)

    def take_resting_partial(self, instant: object) -> Decimal | None:
        """The fraction to fill resting orders with at `instant`: one pending entry is consumed by the first
        tick at a new instant; any other tick gets None (an instant ticked twice fills once)."""
        with self._lock:
            if not self._resting_partials or instant == self._resting_partial_at:
                return None
            self._resting_partial_at = instant
            return self._resting_partials.pop(0)

    def fill_on_cancel(self, count: int, fraction: Decimal) -> None:
        """The next `count` cancels of a resting order first fill `fraction` of what it still wants (at least
        one step) as a maker: a fill racing the cancel, shown in the cancel's reply."""
        with self._lock:
            self._cancel_fills.extend([fraction] * count)

    def take_cancel_fill(self) -> Decimal | None:
        """Consume one pending fill-before-cancel; counted taken by the engine once it filled."""
        with self._lock:
            return self._cancel_fills.pop(0) if self._cancel_fills else None

    def silence_private(self, on: bool = True) -> None:
        """Stop (or resume) pushing private stream events; the connections stay open."""
        with self._lock:
            self.private_silent = on

    def take_private_silence(self) -> bool:
        """Whether to discard this private event (or batch of them); counted as taken when so."""
        with self._lock:
            if self.private_silent:
                self.taken["silence_private"] += 1
            return self.private_silent

    def reorder_private(self, count: int) -> None:
        """Deliver each of the next `count` private events after the event that follows it."""
        with self._lock:
            self._reorders += count

    def take_reorder(self) -> bool:
        """Consume one pending reordering; the caller counts it taken (`note_taken`) once its events go out."""
        with self._lock:
            if self._reorders:
                self._reorders -= 1
                return True
            return False

    def set_latency(self, seconds: float) -> None:
        """Delay every answer by `seconds`."""
        with self._lock:
            self.latency_s = max(0.0, seconds)

    def take_latency(self) -> float:
        """The network delay for this request (counted as taken when there is one)."""
        with self._lock:
            if self.latency_s > 0:
                self.taken["latency"] += 1
            return self.latency_s

    def take_reject(self, reduce_only: bool = False) -> InjectedReject | None:
        """Consume the first pending rejection that applies to an order of this kind."""
        with self._lock:
            for i, reject in enumerate(self._rejects):
                if reject.reduce_only is None or reject.reduce_only == reduce_only:
                    self.taken[reject.label] += 1
                    return self._rejects.pop(i)
            return None

    def take_http_error(self) -> InjectedHttpError | None:
        """Consume one pending request failure."""
        with self._lock:
            if not self._http:
                return None
            injected = self._http.pop(0)
            self.taken[injected.label] += 1
            return injected

    def take_blackhole(self) -> bool:
        """Consume one pending never-answer."""
        with self._lock:
            if self._blackholes:
                self._blackholes -= 1
                self.taken["blackhole"] += 1
                return True
            return False

    def take_partial(self) -> Decimal | None:
        """Consume one pending partial fill."""
        with self._lock:
            if not self._partials:
                return None
            self.taken["partial_fill"] += 1
            return self._partials.pop(0)

    def take_delay(self, method: str, path: str) -> InjectedDelay | None:
        """Consume the first pending delay that applies to this request. Counted as taken only once the held
        request is carried out (`note_taken("delay")`): a server stopped meanwhile never delivers it."""
        with self._lock:
            for i, delay in enumerate(self._delays):
                if delay.method in (None, method) and delay.path in (None, path):
                    return self._delays.pop(i)
            return None

    def note_taken(self, kind: str) -> None:
        """Count a fault that took effect outside the `take_*` methods."""
        with self._lock:
            self.taken[kind] += 1

    def pending(self) -> dict[str, int]:
        """Counts of what is pending (for the admin endpoint)."""
        with self._lock:
            return {
                "rejects": len(self._rejects),
                "http_errors": len(self._http),
                "blackholes": self._blackholes,
                "partial_fills": len(self._partials),
                "delays": len(self._delays),
                "private_reorders": self._reorders,
                "private_silent": int(self.private_silent),
                "post_only_expiries": self._post_only_expiries,
                "resting_partials": len(self._resting_partials),
                "cancel_fills": len(self._cancel_fills),
            }

    # ---- private (account) streams served outside the shared ws server (Hibachi's /ws/account) -----------
    # They take the same knobs (silence_private, reorder_private) per batch of events, where Backpack's
    # private streams on the shared server take them per event.

    def drop_account_streams(self) -> int:
        """Close every account-stream connection served outside the shared ws server; returns how many."""
        return sum(drop() for drop in list(self.account_stream_droppers))
