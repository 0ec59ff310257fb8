"""The storage watch: the main loop's proof that the database still takes writes (a heartbeat row the writer
commits every few seconds), and what happens once it does not: the process's reason to stop."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pykka

from actors.health import HEARTBEAT_EVERY_S, WRITE_FATAL_AGE_S, HealthTracker
from actors.messages import Heartbeat, SetTradingMode, TradingMode
from alerts.policy import Alert
from core.clock import Clock
from core.domain import EventLevel
from storage.checks import describe_storage_error
from storage.failure import is_storage_failure

log = logging.getLogger(__name__)


class StorageWatch:
    """Sends the heartbeat, judges its answer, and latches the first storage failure as `fatal`. Thread-safe:
    a failure may be reported by the writer's thread as well as by the main loop."""

    def __init__(
        self,
        clock: Clock,
        tracker: HealthTracker,
        tell: Callable[[SetTradingMode], Any],  # to the coordinator, the gate's one writer
        writer: Callable[[], pykka.ActorRef[Any] | None],
        alert: Callable[[Alert], None],
        db_label: str,
    ) -> None:
        self._clock = clock
        self._tracker = tracker
        self._tell = tell
        self._writer = writer
        self._alert = alert  # must not need the database
        self._db_label = db_label
        self._heartbeat: pykka.Future[Any] | None = None
        self._next_heartbeat = 0.0
        self._fatal: str | None = None
        self._lock = threading.Lock()

    @property
    def fatal(self) -> str | None:
        """Why the process must stop now (the database cannot be written), or None."""
        with self._lock:
            return self._fatal

    def check(self, now: float) -> None:
        """Every HEARTBEAT_EVERY_S, have the writer commit a small row: the proof `health` needs that the
        database still takes writes, and how a full disk is noticed even when nothing else is written."""
        if self._heartbeat is not None:
            try:
                self._heartbeat.get(timeout=0)
            except pykka.Timeout:
                return
            except Exception as exc:  # noqa: BLE001 - the writer is down or the write failed
                self._tracker.write_failed(type(exc).__name__)
                # A passing condition (a lock held past the busy timeout) gets a minute before it counts as failed.
                if is_storage_failure(exc) or self._tracker.write_age(now) > WRITE_FATAL_AGE_S:
                    self.failed(exc)
            else:
                self._tracker.wrote(now)
            self._heartbeat = None
        if now < self._next_heartbeat:
            return
        writer = self._writer()
        if writer is None:
            return
        self._next_heartbeat = now + HEARTBEAT_EVERY_S
        try:
            self._heartbeat = writer.ask(Heartbeat(self._clock.now()), block=False)
        except pykka.ActorDeadError:
            self._heartbeat = None

    def failed(self, exc: BaseException) -> None:
        """The database refused a write for a reason that will not pass by itself (full disk, read-only,
        I/O error, corruption): alert a person without the database, stop opening, and make the process exit
        non-zero so that the container is restarted and the start-up check names the problem."""
        with self._lock:
            if self._fatal is not None:
                return
            self._fatal = f"the database cannot be written: {describe_storage_error(exc, self._db_label)}"
            reason = self._fatal
        self._tracker.write_failed(reason)
        self._tell(SetTradingMode(TradingMode.PAUSED, "the database cannot be written"))
        log.critical("%s; stopping so that the process is restarted", reason)
        self._alert(Alert(self._clock.now(), EventLevel.CRITICAL, "storage_failed", reason))
