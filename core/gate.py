"""Arm-and-fire for the two legs of an open: each venue's actor prepares its leg's order (built, signed, HTTP
request prepared, connection taken from its pool and connected), and the leg's request bytes are held at this
gate instead of written. The last leg to arrive writes every held leg's bytes itself, back to back in its own
thread, so the legs leave together without a second thread having to be scheduled.

Why one thread writes both: on a machine whose cores are busy (a fleet of fifty workers on two cores), a leg
released from a barrier in its own thread waits for the scheduler, and the legs went out up to a time slice
(several ms) apart. Writing both from the thread already running makes the gap two socket writes.

A leg whose bytes cannot be held (a proxied session, a test double) arrives without them and, once every leg is
there, sends its own. A leg never waits for long: one that fails before it is ready abandons the gate, and a leg
whose partner has not turned up by `wait_s` goes alone (writing its own held bytes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# Longer than any local preparation (including a client's refresh of the venue's rules at its round trip),
# far shorter than what would matter if the partner leg were stuck.
LEG_GATE_WAIT_S = 0.25

# A held leg's write: it must not raise (it keeps its own error for its leg's thread to raise).
Write = Callable[[], None]


# How long the last leg naps before writing: the point is to leave the CPU and be woken, and the timer's slack
# (about 50 µs) dwarfs it; long enough that the deadline is not already past when the sleep starts.
FRESH_SLICE_NAP_S = 1e-5


def _fresh_slice() -> None:
    """Sleep for a moment before writing the legs, so that the writes start on a fresh time slice: neither the
    scheduler's tick nor a task waking meanwhile then takes the CPU from the writer between its two writes.

    Why a sleep: Linux's fair scheduler (EEVDF) gives a task a new deadline and a protected slice when it wakes;
    what was left of the fleet's tail (50 workers on 2 cores) was the writer preempted once between the two
    writes, then 1-30 ms in the run queue (/proc/thread-self/schedstat per fire). `sched_yield` did this only when
    another task was queued on the writer's CPU. Fleet bench leg skew p99, workers on the batch class: 156, 176 and
    178 µs with this nap (0, 0 and 1 opens over 1 ms in about 215), 899 µs and 1.65 ms with the yield (2 and 3 over
    1 ms). It delays both legs alike: the timer's slack (about 50 µs), and on a busy CPU the running task's slice."""
    time.sleep(FRESH_SLICE_NAP_S)


class LegGate:
    """A one-shot meeting point for the order requests of the legs of one open."""

    def __init__(self, legs: int = 2, wait_s: float = LEG_GATE_WAIT_S) -> None:
        self._legs = legs
        self._wait_s = wait_s
        self._changed = threading.Condition(threading.Lock())
        self._arrived = 0
        self._held: list[Write] = []
        self._fired = False
        self._broken = False

    def ready(self, write: Write | None = None) -> bool:
        """Called by a leg with its request ready: `write` puts its held bytes on the wire (None: the leg sends
        them itself after this returns). Returns once every leg is ready and every held leg written (True), or
        at once if a leg gave up, or after `wait_s` (False: this leg went alone, its `write` already done)."""
        with self._changed:
            if not (self._fired or self._broken):
                self._arrived += 1
                if write is not None:
                    self._held.append(write)
                if self._arrived == self._legs:
                    # Back to back in this thread, while it holds the CPU: no other thread has to be woken first.
                    if self._held:
                        _fresh_slice()
                    for held in self._held:
                        held()
                    self._held.clear()
                    self._fired = True
                    self._changed.notify_all()
                    return True
                self._changed.wait_for(lambda: self._fired or self._broken, self._wait_s)
                if self._fired:
                    return True
                self._broken = True  # timed out (or abandoned): nobody writes for anyone any longer
                self._changed.notify_all()
                if write is not None:
                    self._held.remove(write)  # still held: only a fired gate empties the list
        if write is not None:
            write()  # alone, in this leg's own thread
        return False

    def abandon(self) -> None:
        """This leg will not send (or has sent): nobody waits for it any longer. Safe to call more than once."""
        with self._changed:
            if not self._fired:
                self._broken = True
                self._changed.notify_all()

    @property
    def waiting(self) -> int:
        """How many legs are held at the gate now."""
        with self._changed:
            return 0 if self._fired or self._broken else self._arrived

    def __repr__(self) -> str:
        return f"LegGate(legs={self._legs}, waiting={self.waiting})"
