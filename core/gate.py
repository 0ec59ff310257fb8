"""Arm-and-fire for the two legs of an open: each venue's actor prepares its leg's order first (built, signed,
HTTP request prepared: PerpExchange.prepare_order), holds it here until the other leg's is prepared too, and
then sends it (send_order), so both go on the wire together.

Without it the second leg leaves only once the first has done its own request building (signing, JSON,
the HTTP library's preparation), about 1.5 ms on a slow 2-core machine; with it, the legs are apart by
the HTTP library's send path alone. A leg never waits for long: a leg that fails before it is ready
abandons the gate, and a leg whose partner has not turned up by `wait_s` goes alone.
"""

from __future__ import annotations

import threading

# Longer than any local preparation (including a client's refresh of the venue's rules at its round trip),
# far shorter than what would matter if the partner leg were stuck.
LEG_GATE_WAIT_S = 0.25


class LegGate:
    """A one-shot meeting point for the order requests of the legs of one open."""

    def __init__(self, legs: int = 2, wait_s: float = LEG_GATE_WAIT_S) -> None:
        self._barrier = threading.Barrier(legs)
        self._wait_s = wait_s

    def ready(self) -> bool:
        """Called by a leg with its request ready to send: returns once every leg is ready (True), or at
        once if a leg gave up, or after `wait_s` (False: this leg goes alone)."""
        try:
            self._barrier.wait(self._wait_s)
        except threading.BrokenBarrierError:
            return False
        return True

    def abandon(self) -> None:
        """This leg will not send (or has sent): nobody waits for it any longer. Safe to call more than once."""
        self._barrier.abort()

    @property
    def waiting(self) -> int:
        """How many legs are held at the gate now."""
        return self._barrier.n_waiting

    def __repr__(self) -> str:
        return f"LegGate(legs={self._barrier.parties}, waiting={self.waiting})"
