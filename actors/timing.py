"""Timings of orders and opens (real time, time.monotonic_ns), kept apart from the messages that carry outcomes.

The venue actors report each order's WireTiming here; the coordinator assembles an open's OpenTiming from its
legs' client ids and keeps it; the order path's outcomes go on to the Prometheus metrics when they are on.
One Timings per engine, shared by every actor (thread-safe, bounded).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actors.messages import OrderAccepted, OrderRejected
from core.domain import Venue
from exchanges.base import WireMark

if TYPE_CHECKING:
    from control.metrics import Metrics

# Enough for every order of the opens and closes in flight, and for a benchmark's run of opens.
KEEP_ORDERS = 4096
KEEP_OPENS = 1024


@dataclass(frozen=True, slots=True)
class WireTiming:
    """An order on the wire: its request handed to the HTTP library and its reply read, the last venue reply
    it needed (read-backs, fills), and the arrival stamp of a loopback simulator (None from a real venue)."""

    sent_ns: int
    answered_ns: int
    done_ns: int
    requests: int
    venue_received_ns: int | None = None


@dataclass(frozen=True, slots=True)
class OpenTiming:
    """One open in real time: decided (plan made, leverage set), each leg on the wire, outcome committed."""

    decided_ns: int
    legs: tuple[WireTiming | None, ...]
    concluded_ns: int

    @property
    def _sent(self) -> list[WireTiming] | None:
        legs = [leg for leg in self.legs if leg is not None]
        return legs if len(legs) == len(self.legs) and legs else None

    @property
    def leg_skew_ns(self) -> int | None:
        """Between the first and the last leg's request leaving (None if a leg was never sent)."""
        legs = self._sent
        return None if legs is None else max(x.sent_ns for x in legs) - min(x.sent_ns for x in legs)

    @property
    def arrival_skew_ns(self) -> int | None:
        """Between the legs reaching their venues (loopback simulators only)."""
        legs = self._sent
        if legs is None or any(x.venue_received_ns is None for x in legs):
            return None
        arrivals = [x.venue_received_ns for x in legs if x.venue_received_ns is not None]
        return max(arrivals) - min(arrivals)

    @property
    def to_wire_ns(self) -> int | None:
        """From the decision to every leg's request on the wire: the engine's cost before sending."""
        legs = self._sent
        return None if legs is None else max(x.sent_ns for x in legs) - self.decided_ns

    @property
    def to_commit_ns(self) -> int | None:
        """From the last venue reply to the outcome committed: the engine's cost after the venues answered."""
        legs = self._sent
        return None if legs is None else self.concluded_ns - max(x.done_ns for x in legs)


def wire_timing(marks: Sequence[WireMark]) -> WireTiming | None:
    """An order's timing from the requests it took: the first write is the order itself (reads before it,
    such as a venue-status check, are not), the last reply is when the venue was done with it."""
    order = next((i for i, mark in enumerate(marks) if mark.method != "GET"), None)
    if order is None:
        return None
    first = marks[order]
    return WireTiming(
        first.sent_ns, first.answered_ns, marks[-1].answered_ns, len(marks) - order, first.venue_received_ns
    )


def outcome_label(reply: Any) -> str:
    """The metrics label of an order's settled outcome: the venue's status, `rejected` or `in_flight`."""
    if isinstance(reply, OrderAccepted):
        return reply.status.value
    return "rejected" if isinstance(reply, OrderRejected) else "in_flight"


class Timings:
    """The engine's timing observer: orders' wire timings by venue and client id, opens' timings by pair id
    (the latest KEEP_ORDERS and KEEP_OPENS), and settled order outcomes to `metrics` when given."""

    def __init__(self, metrics: Metrics | None = None, *, keep_orders: int = KEEP_ORDERS,
                 keep_opens: int = KEEP_OPENS) -> None:  # fmt: skip
        self.metrics = metrics
        self._lock = threading.Lock()
        self._orders: OrderedDict[tuple[Venue, str], WireTiming] = OrderedDict()
        self._opens: OrderedDict[int, OpenTiming] = OrderedDict()
        self._keep_orders = keep_orders
        self._keep_opens = keep_opens
        self.hedges: deque[tuple[int | None, int | None]] = deque(maxlen=keep_orders)

    def order_sent(self, venue: Venue, client_id: str, timing: WireTiming | None) -> None:
        """An order's requests are done (by its venue's actor); None: it never reached the wire."""
        if timing is None:
            return
        with self._lock:
            _keep(self._orders, (venue, client_id), timing, self._keep_orders)

    def wire(self, venue: Venue, client_id: str) -> WireTiming | None:
        """The last reported wire timing of the order `client_id` on `venue`."""
        with self._lock:
            return self._orders.get((venue, client_id))

    def order_settled(self, venue: Venue, reply: Any, seconds: float) -> None:
        """An order's outcome is settled after `seconds` (place to final or given up): counted in the metrics."""
        if self.metrics is not None:
            self.metrics.observe_order(venue.value, outcome_label(reply), seconds)

    def open_timing(self, decided_ns: int, legs: Sequence[tuple[Venue, str]], concluded_ns: int = 0) -> OpenTiming:
        """An open's timing from its legs' orders (venue, client id) as reported so far."""
        with self._lock:
            wires = tuple(self._orders.get(leg) for leg in legs)
        return OpenTiming(decided_ns, wires, concluded_ns)

    def record_open(self, pair_id: int, timing: OpenTiming) -> None:
        """Keep an open's timing (its outcome is committed)."""
        with self._lock:
            _keep(self._opens, pair_id, timing, self._keep_opens)

    def hedged(self, to_wire_ns: int | None, to_filled_ns: int | None) -> None:
        """A maker fill's hedge: from the fill heard to the hedge on the wire, and to the hedge filled."""
        with self._lock:
            self.hedges.append((to_wire_ns, to_filled_ns))

    def open(self, pair_id: int) -> OpenTiming | None:
        """The timing of the open of `pair_id`, if it is among the latest kept."""
        with self._lock:
            return self._opens.get(pair_id)


def _keep(store: OrderedDict[Any, Any], key: Any, value: Any, keep: int) -> None:
    store[key] = value
    store.move_to_end(key)
    while len(store) > keep:
        store.popitem(last=False)
