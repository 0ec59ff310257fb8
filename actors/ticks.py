"""The main loop's ticks: the coordinator and the closer every `tick_s`, the monitor every `interval_s`. A tick
is never sent while the previous one is still being handled, and a tick that raised restarts its actor."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pykka

from actors.messages import Tick
from actors.supervision import Supervisor
from core.clock import Clock
from core.config import Settings
from core.domain import EventLevel
from storage.failure import is_storage_failure

log = logging.getLogger(__name__)

TICKED = ("coordinator", "closer")  # every tick_s; the monitor has its own interval


class Ticker:
    """Sends the ticks that are due; one tick in flight per actor."""

    def __init__(
        self,
        clock: Clock,
        supervisor: Supervisor,
        settings: Settings,
        on_storage_failure: Callable[[BaseException], None],
        record_event: Callable[..., None],
    ) -> None:
        self._clock = clock
        self._supervisor = supervisor
        self._settings = settings
        self._on_storage_failure = on_storage_failure
        self._record_event = record_event
        self._futures: dict[str, pykka.Future[Any]] = {}
        self._next_tick = 0.0
        self._next_monitor = 0.0

    def send_due(self, now: float) -> None:
        """Send every tick due at monotonic `now`."""
        if now >= self._next_tick:
            self._next_tick = now + float(self._settings.timings.tick_s)
            for name in TICKED:
                self.tick(name)
        if now >= self._next_monitor:
            self._next_monitor = now + float(self._settings.monitor.interval_s)
            self.tick("monitor")

    def tick(self, name: str) -> None:
        """Send a Tick unless the previous one is still being handled; a tick that raised is a bug: restart."""
        previous = self._futures.get(name)
        if previous is not None:
            try:
                previous.get(timeout=0)
            except pykka.Timeout:
                return  # still busy: never pile ticks up
            except pykka.ActorDeadError:
                pass
            except Exception as exc:
                if is_storage_failure(exc):
                    self._on_storage_failure(exc)
                log.exception("%s tick failed; restarting it", name)
                message = f"{name} tick raised {exc!r}; restarting it"
                self._record_event(EventLevel.WARNING, "tick_failed", message, actor=name)
                self._supervisor.restart_now(name, f"tick raised {exc!r}")
                self._futures.pop(name, None)
                return
        ref = self._supervisor.ref(name)
        if ref is None:
            return
        try:
            self._futures[name] = ref.ask(Tick(self._clock.now()), block=False)
        except pykka.ActorDeadError:
            self._futures.pop(name, None)
