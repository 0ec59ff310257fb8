"""What the engine is in the middle of, for whoever drives fake time (`supervisor.py simulate`, tests): time
must not pass while a maker fill waits for its hedge, or the simulated market would move under a hedge that a
real one sends within milliseconds. Thread-safe; counters only, nothing here decides anything."""

from __future__ import annotations

import threading
import time
from decimal import Decimal


class Activity:
    """Maker fills heard and handled, orders on the wire, and each pair's unhedged USD right now."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._handled: dict[tuple[str, str], Decimal] = {}  # (venue, venue order id) -> filled quantity handled
        self._in_flight = 0
        self._unhedged: dict[int, Decimal] = {}
        self.peak_unhedged_usd = Decimal(0)
        # Set when the engine stops: a maker phase then ends at once (cancels, levels its legs) instead of
        # resting orders for up to maker_timeout_s while the actors are asked to stop.
        self.stopping = threading.Event()
        self._phases = 0  # maker phases running
        self._phases_waiting = 0  # of them, those whose thread waits for a fill or for time to pass
        # Urgent work for the actors a maker phase holds (a pair gone NAKED, a close-all, a breached limit): a
        # phase started before the latest alarm ends at once, so that its actor can take that work.
        self._alarms = 0
        self._alarm_reason = ""

    def handled(self, venue: str, venue_order_id: str, filled: Decimal) -> None:
        """The executor has acted on `filled` (cumulative) of a resting order: hedged it, or carried it."""
        with self._cond:
            key = (venue, venue_order_id)
            self._handled[key] = max(self._handled.get(key, Decimal(0)), filled)
            self._cond.notify_all()

    def handled_quantity(self, venue: str, venue_order_id: str) -> Decimal:
        """How much of a resting order's fills the executor has acted on."""
        with self._cond:
            return self._handled.get((venue, venue_order_id), Decimal(0))

    def sending(self, delta: int) -> None:
        """An order went out (+1) or its outcome came back (-1)."""
        with self._cond:
            self._in_flight += delta
            self._cond.notify_all()

    def unhedged(self, pair_id: int, usd: Decimal) -> None:
        """The pair's exposure beyond its hedge right now (0 when hedged)."""
        with self._cond:
            if usd:
                self._unhedged[pair_id] = usd
                self.peak_unhedged_usd = max(self.peak_unhedged_usd, usd)
            else:
                self._unhedged.pop(pair_id, None)
            self._cond.notify_all()

    def phase(self, delta: int, *, waiting: bool = False) -> None:
        """A maker phase began (+1) or ended (-1); with `waiting`, its thread began or ended a wait."""
        with self._cond:
            if waiting:
                self._phases_waiting += delta
            else:
                self._phases += delta
            self._cond.notify_all()

    def alarm(self, reason: str) -> None:
        """Urgent work waits: every maker phase running now ends (cancels, levels its legs) and lets its actor go."""
        with self._cond:
            self._alarms += 1
            self._alarm_reason = reason
            self._cond.notify_all()

    def alarms(self) -> int:
        """How many alarms were raised so far (a phase keeps the count it started at)."""
        with self._cond:
            return self._alarms

    def alarm_since(self, seen: int) -> str | None:
        """The latest alarm's reason when one was raised after `seen` alarms, else None."""
        with self._cond:
            return self._alarm_reason if self._alarms > seen else None

    def phases_waiting(self) -> bool:
        """Whether maker phases run and every one of them waits (for a fill, or for its next deadline): the
        actor running it answers nothing meanwhile, and only a fill or time passing moves it on."""
        with self._cond:
            return self._phases > 0 and self._phases_waiting >= self._phases

    def busy(self) -> bool:
        """Whether an order is on the wire or a pair is unhedged."""
        with self._cond:
            return self._in_flight > 0 or bool(self._unhedged)

    def wait_quiet(self, timeout_s: float) -> bool:
        """Block (real time) until not busy; False on timeout."""
        end = time.monotonic() + timeout_s
        with self._cond:
            while self._in_flight > 0 or self._unhedged:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True
