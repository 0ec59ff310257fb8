"""The worker's end of the supervisor's heartbeat: a worker whose supervisor has gone silent (kill -9'd, or
wedged) stops, rather than trade on with nobody to restart, stop or watch it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[str, dict[str, Any]], Any]
HEARTBEAT = "health"  # the supervisor's heartbeat is the reserved command, which a control server never refuses


class SupervisorWatch:
    """When the supervisor was last heard; silent for `timeout_s` (counted from creation at first) = gone."""

    def __init__(self, timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout_s = timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last = clock()

    def poke(self) -> None:
        """The supervisor was just heard from."""
        now = self._clock()
        with self._lock:
            self._last = now

    def silent_for(self, now: float | None = None) -> float:
        """Seconds since the supervisor was last heard."""
        with self._lock:
            last = self._last
        return (self._clock() if now is None else now) - last

    def expired(self, now: float | None = None) -> bool:
        """Whether the supervisor has been silent for longer than `timeout_s`."""
        return self.silent_for(now) > self.timeout_s

    def watch(
        self, on_silence: Callable[[], None], stop: threading.Event, tick_s: float | None = None
    ) -> threading.Thread:
        """A daemon thread that calls `on_silence` once when the supervisor goes silent (or ends with `stop`)."""
        tick = tick_s if tick_s is not None else max(0.01, min(1.0, self.timeout_s / 10))

        def run() -> None:
            while not stop.wait(tick):
                if self.expired():
                    log.critical("no heartbeat from the fleet supervisor for %.1fs: stopping", self.silent_for())
                    on_silence()
                    return

        thread = threading.Thread(target=run, name="supervisor-watch", daemon=True)
        thread.start()
        return thread


def watched(handler: Handler, watch: SupervisorWatch) -> Handler:
    """A control handler that pokes `watch` on every heartbeat before serving it."""

    def serve(cmd: str, args: dict[str, Any]) -> Any:
        if cmd == HEARTBEAT:
            watch.poke()
        return handler(cmd, args)

    return serve
