"""When a venue client measures the venue's clock again: on a schedule (monotonic, so a wall-clock step does not
move it) and right after the venue refused a request for its time. Shared by both venues' clients."""

from __future__ import annotations

import logging
from collections.abc import Callable

from core.clock import Clock
from exchanges.errors import VenueError

log = logging.getLogger(__name__)


class ClockResync:
    """Runs `measure(retry)` (returns the offset in ms) every `every_s` seconds before a signed request, without
    retries, and with retries right after a refusal."""

    def __init__(self, venue: str, clock: Clock, every_s: float, measure: Callable[[bool], int]) -> None:
        self.venue = venue
        self.every_s = every_s
        self._clock = clock
        self._measure = measure
        self._due = clock.monotonic() + every_s

    def measured(self) -> None:
        """A measurement just happened (at start, or by hand): the next is one period away."""
        self._due = self._clock.monotonic() + self.every_s

    def before_request(self, *, write: bool) -> None:
        """The periodic measurement, when due. An order does not pay a round trip for it unless no read did it
        for two periods; a failure only logs."""
        overdue = self._clock.monotonic() - self._due
        if overdue < 0 or (write and overdue < self.every_s):
            return
        # Due again one period on even if this fails: a venue that is down is not asked before every request.
        self._due = self._clock.monotonic() + self.every_s
        try:
            offset_ms = self._measure(False)
        except VenueError as exc:
            log.warning("%s: periodic clock sync failed (%s); keeping the offset", self.venue, exc)
        else:
            log.debug("%s clock offset %d ms", self.venue, offset_ms)

    def after_refusal(self, refusal: VenueError) -> None:
        """Measure now, since the venue refused a request for its time; re-raise `refusal` if that fails."""
        log.warning("%s refused a request for its time (%s): measuring the clock offset", self.venue, refusal,
                    extra={"venue": self.venue})  # fmt: skip
        try:
            offset_ms = self._measure(True)
        except VenueError as exc:
            raise refusal from exc
        log.warning("%s clock offset now %d ms", self.venue, offset_ms, extra={"venue": self.venue})
