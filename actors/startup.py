"""Start-up reconciliation, driven from the main loop without blocking it: the closer settles unfinished pairs,
then the monitor compares venue positions with the pairs. Each step is an ask whose future the loop polls, so
the loop keeps turning (heartbeat, supervision, health) however long a venue takes to answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from actors.messages import ReconcilePairs, ReconcilePositions, ReconcileReport


@dataclass(frozen=True, slots=True)
class Reconciled:
    """Both steps answered (complete or not)."""

    pairs: ReconcileReport
    positions: ReconcileReport


@dataclass(frozen=True, slots=True)
class ReconcileFailed:
    """A step raised, its actor was down, or it did not answer within the timeout."""

    error: BaseException


class StartupReconciliation:
    """Polls one reconciliation attempt: `poll()` is None while it runs, then its outcome (and it is reset)."""

    def __init__(self, ref: Callable[[str], pykka.ActorRef[Any] | None], timeout_s: float) -> None:
        self._ref = ref
        self._timeout_s = timeout_s
        self._future: pykka.Future[Any] | None = None
        self._started = 0.0
        self._pairs: ReconcileReport | None = None

    def poll(self, now: float) -> Reconciled | ReconcileFailed | None:
        """Start, advance or finish the attempt at monotonic `now`."""
        if self._future is None:
            return self._ask("closer", ReconcilePairs(), now)
        try:
            report: ReconcileReport = self._future.get(timeout=0)
        except pykka.Timeout:
            if now - self._started <= self._timeout_s:
                return None
            return self._fail(TimeoutError(f"no answer within {self._timeout_s:.0f}s"))
        except Exception as exc:  # noqa: BLE001 - a venue or an actor failed this attempt: the caller retries
            return self._fail(exc)
        if self._pairs is None:
            self._pairs = report
            return self._ask("monitor", ReconcilePositions(), now)
        pairs, self._pairs, self._future = self._pairs, None, None
        return Reconciled(pairs, report)

    def _ask(self, name: str, message: Any, now: float) -> ReconcileFailed | None:
        ref = self._ref(name)
        if ref is None:
            return self._fail(RuntimeError(f"the {name} is not running"))
        try:
            self._future = ref.ask(message, block=False)
        except pykka.ActorDeadError as exc:
            return self._fail(exc)
        self._started = now
        return None

    def _fail(self, error: BaseException) -> ReconcileFailed:
        self._future, self._pairs = None, None
        return ReconcileFailed(error)
